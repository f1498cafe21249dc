"""The live inbox's channel layer on Redis survives a quiet spell: a web worker waits for its
sockets' messages with a 5-s BZPOPMIN (channels-redis), and redis-py 8 gave up reading any reply
after 5 s, so each quiet 5 s raised TimeoutError in a waiting consumer and closed an agent's
socket (found by bench/live_inbox.py: pushes made meanwhile were lost)."""
import asyncio

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from tests.conftest import requires_redis

QUIET_SECONDS = 6.5  # longer than channels-redis' blocking wait (brpop_timeout, 5 s)


@requires_redis
def test_a_channel_waiting_through_a_quiet_spell_still_gets_its_message():
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert RedisChannelLayer.brpop_timeout < QUIET_SECONDS

    async def wait() -> dict:
        layer = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
        try:
            channel = await layer.new_channel()

            async def send_late():
                await asyncio.sleep(QUIET_SECONDS)
                await layer.send(channel, {"type": "inbox.event", "kind": "late"})

            sender = asyncio.create_task(send_late())
            message = await asyncio.wait_for(layer.receive(channel), QUIET_SECONDS + 10)
            await sender
            return message
        finally:
            await layer.close_pools()

    assert asyncio.run(wait()) == {"type": "inbox.event", "kind": "late"}


@pytest.mark.parametrize("seconds", ["15", "30"])
def test_the_read_timeout_outlasts_the_blocking_wait(seconds, monkeypatch):
    """The setting (CHANNEL_LAYER_SOCKET_TIMEOUT) reaches the pool and stays above the wait."""
    import importlib

    import cxinbox.settings.base as base

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CHANNEL_LAYER_SOCKET_TIMEOUT", seconds)
    try:
        host = importlib.reload(base).CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    finally:
        monkeypatch.undo()
        importlib.reload(base)
    assert host["socket_timeout"] == float(seconds) > RedisChannelLayer.brpop_timeout
