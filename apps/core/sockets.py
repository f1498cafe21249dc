"""What every websocket consumer of the project does with a frame it cannot use
(issue 18): a binary frame, text that is not a JSON object, a frame past
MAX_FRAME_CHARS or nested past Python's recursion limit gets an error frame and
is dropped; the socket stays open. Before, channels' JSON consumer raised on it
and the connection died with a 1011 (and its presence with it)."""
from __future__ import annotations

# The browser sends small control frames ({"action": "view", "conversation_id": 12}).
MAX_FRAME_CHARS = 4096


class JsonFrameGuard:
    """Put before AsyncJsonWebsocketConsumer in the bases: receive_json only ever
    gets a dict from a text frame of sane size."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        content, problem = None, None
        if text_data is None:
            problem = "Frames are JSON text, not binary."
        elif len(text_data) > MAX_FRAME_CHARS:
            problem = f"Frames are at most {MAX_FRAME_CHARS} characters."
        else:
            try:
                content = await self.decode_json(text_data)
            except (ValueError, RecursionError):  # not JSON; [[[[... 50,000 deep
                problem = "Frames are JSON objects."
            if content is not None and not isinstance(content, dict):
                problem = "Frames are JSON objects."
        if problem is not None:
            await self.send_json({"kind": "error", "detail": problem})
            return
        await self.receive_json(content, **kwargs)
