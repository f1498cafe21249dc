"""A channel layer for the embedded mode (`make run` without Redis) whose group messages cross
processes through a folder.

Channels' in-memory layer keeps a group's members in one process: the Celery worker's pushes
(a new mention, routing) went to a layer inside the worker and never reached the sockets held by
the web process, so the page said "Live" and showed nothing until a reload. Here every
`group_send`, from any process, is written as a small file in a shared folder; a process that
holds sockets (it called `group_add`) reads the folder a few times a second and hands each
message to its local groups. Production uses channels-redis; this is for one box, a few users.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from channels.layers import InMemoryChannelLayer


class SpoolChannelLayer(InMemoryChannelLayer):
    def __init__(self, folder: str, poll_seconds: float = 0.25, keep_seconds: float = 60.0, **kwargs):
        super().__init__(**kwargs)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self._reader: asyncio.Task | None = None
        self._sent = 0

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        # The name sorts by time; written aside then renamed, so a reader never sees half a file.
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_text(json.dumps({"group": group, "message": message}))
        os.replace(temporary, self.folder / name)
        self._sent += 1
        if self._sent % 200 == 0:  # a process that only sends (the worker) keeps the folder small
            self._prune()

    async def group_add(self, group, channel):
        await super().group_add(group, channel)
        self._read_start()

    def _read_start(self) -> None:
        if self._reader is None or self._reader.done() or self._reader.get_loop() is not asyncio.get_running_loop():
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def _read_forever(self) -> None:
        # Only what was sent from now on: an older push is about a page the browser has reloaded since.
        since = f"{time.time_ns():020d}"
        seen: set[str] = set()
        while True:
            try:
                names = sorted(n for n in os.listdir(self.folder) if n.endswith(".json") and n > since)
            except FileNotFoundError:
                names = []
            for name in names:
                if name in seen:
                    continue
                seen.add(name)
                try:
                    item = json.loads((self.folder / name).read_text())
                except (OSError, ValueError):
                    continue  # pruned meanwhile, or not ours
                if isinstance(item, dict) and isinstance(item.get("message"), dict):
                    await InMemoryChannelLayer.group_send(self, str(item.get("group")), item["message"])
            if len(seen) > 5000:
                seen = {n for n in seen if n in set(names)}
            self._prune()
            await asyncio.sleep(self.poll_seconds)

    def _prune(self) -> None:
        """Files older than keep_seconds go: every reader has long read them."""
        cutoff = f"{time.time_ns() - int(self.keep_seconds * 1e9):020d}"
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            if name.lstrip(".") < cutoff:
                try:
                    os.remove(self.folder / name)
                except OSError:
                    pass
