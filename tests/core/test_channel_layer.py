"""The embedded mode's channel layer: a push sent in another process (the Celery worker)
reaches the sockets this process holds, and only the groups they joined."""
import asyncio
import subprocess
import sys
import textwrap

import pytest
from asgiref.sync import async_to_sync

from apps.core.channel_layer import SpoolChannelLayer

SEND = textwrap.dedent("""
    import sys
    from asgiref.sync import async_to_sync
    from apps.core.channel_layer import SpoolChannelLayer
    layer = SpoolChannelLayer(folder=sys.argv[1])
    async_to_sync(layer.group_send)(sys.argv[2], {"type": "inbox.event", "kind": "created", "conversation_id": 7})
""")


def send_from_another_process(folder, group):
    subprocess.run([sys.executable, "-c", SEND, str(folder), group], check=True, timeout=60)


def test_a_push_from_another_process_reaches_this_process_sockets(tmp_path):
    async_to_sync(_reaches)(tmp_path)


async def _reaches(tmp_path):
    layer = SpoolChannelLayer(folder=str(tmp_path), poll_seconds=0.05)
    team, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("inbox.team.1", team)
    await layer.group_add("inbox.team.2", other)

    await asyncio.to_thread(send_from_another_process, tmp_path, "inbox.team.1")

    message = await asyncio.wait_for(layer.receive(team), timeout=5)
    assert message == {"type": "inbox.event", "kind": "created", "conversation_id": 7}
    with pytest.raises(asyncio.TimeoutError):  # another team's socket hears nothing
        await asyncio.wait_for(layer.receive(other), timeout=0.5)
    with pytest.raises(asyncio.TimeoutError):  # and this one hears it once
        await asyncio.wait_for(layer.receive(team), timeout=0.5)


def test_pushes_sent_before_the_socket_joined_are_not_replayed_and_old_files_go(tmp_path):
    async_to_sync(_not_replayed)(tmp_path)


async def _not_replayed(tmp_path):
    await asyncio.to_thread(send_from_another_process, tmp_path, "inbox.team.1")
    layer = SpoolChannelLayer(folder=str(tmp_path), poll_seconds=0.05, keep_seconds=0)
    channel = await layer.new_channel()
    await layer.group_add("inbox.team.1", channel)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.5)
    assert list(tmp_path.iterdir()) == []  # read or not, a file past keep_seconds is removed
