"""The inbox websocket: live list and thread updates, toasts, presence.

Every connected browser joins the groups of what its user may see (docs/roles.md,
Ownership: its teams' groups, the unrouted group for supervisors, the inbox group
for admins; ids and kinds only, each page fetches what it may see through the
normal views) and its user's own group (toasts, and the conversations assigned to
them). Team membership is read at connect: a moved agent's next page load reconnects. A thread page
says which conversation it shows ("view") and when its agent types ("typing");
the consumer keeps that in apps.inbox.presence and tells the others."""
from __future__ import annotations

import json
import logging
from collections import deque

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.models import Role, Team
from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.accounts.services import user_activity_touch
from apps.core.sockets import JsonFrameGuard

from . import presence
from .models import Conversation
from .realtime import INBOX_GROUP, UNROUTED_GROUP, conversation_groups, team_group, user_group
from .selectors import conversations_visible_to
from .signals import agent_work_signalled

log = logging.getLogger(__name__)


def _can_view(user, conversation_id: int) -> bool:
    return conversations_visible_to(user).filter(pk=conversation_id).exists()


def _groups_for(user) -> list[str]:
    """The live groups of what the user may see (the same rule as conversations_visible_to)."""
    if user.is_superuser or user.role == Role.ADMIN:
        return [INBOX_GROUP]
    if user.role == Role.SUPERVISOR:
        teams = Team.objects.filter(leads=user).values_list("pk", flat=True)
        return [team_group(pk) for pk in teams] + [UNROUTED_GROUP]
    return [team_group(pk) for pk in Team.objects.filter(members=user).values_list("pk", flat=True)]


def _conversation_id(value) -> int | None:
    """A positive bigint from a JSON number or ASCII digits; None for anything else
    (1e999 made int() raise OverflowError and killed the socket; true was 1)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


SEEN_EIDS = 500  # the last events' ids a socket remembers
PUSH_HANDLERS = {"inbox.event": "inbox_event", "inbox.events": "inbox_events"}
FRAMES_KEPT = 64
_frames: dict[tuple, str] = {}  # (shape, eids) -> the frame's JSON text


def _frame_text(events: list[dict], *, batch: bool) -> str:
    """The JSON text of a push frame: the list frame {"kind": "events", "events": [...]}
    (batch) or the one change; without the routing keys ("type", "eid"). A group message
    reaches every socket of the team on this worker with the same changes: the text is
    made once and kept by the changes' eids (unique per change), not once per socket."""
    eids = tuple(event.get("eid") for event in events)
    key = (batch, eids) if None not in eids else None
    text = _frames.get(key) if key else None
    if text is None:
        changes = [{k: v for k, v in event.items() if k not in ("type", "eid")} for event in events]
        text = json.dumps({"kind": "events", "events": changes} if batch else changes[0])
        if key:
            if len(_frames) >= FRAMES_KEPT:
                del _frames[next(iter(_frames))]  # the oldest
            _frames[key] = text
    return text


class InboxConsumer(JsonFrameGuard, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user_has_role(user, *WORKING_ROLES):
            await self.close(code=4403)
            return
        self.user = user
        self.viewing: int | None = None
        # eids of the last events: one arriving through two groups is sent once (a set beside the
        # deque: `in` on a deque of 500 compared every eid, ~5% of a web worker's CPU under load)
        self.seen, self.seen_set = deque(), set()
        # A page that asks for it (static/js/live.js: ?batch=1) gets a group message's changes
        # as one {"kind": "events", "events": [...]} frame; a page from before (open across a
        # deploy) still gets one frame per change.
        self.batch_frames = b"batch=1" in self.scope.get("query_string", b"").split(b"&")
        self.groups_joined = await database_sync_to_async(_groups_for)(user) + [user_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"kind": "hello", "user_id": user.pk})

    async def disconnect(self, code):
        if getattr(self, "user", None) is None:
            return
        await self._leave()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        # Typing, or a {"action": "heartbeat"} the page sends on user input, is activity:
        # it keeps the agent online (apps.accounts; written at most once a minute).
        # "view" is re-sent by a timer, so it is not.
        if action in ("typing", "heartbeat"):
            await database_sync_to_async(user_activity_touch)(user=self.user)
            if self.viewing is not None:
                await self._work("active", self.viewing)
        if action == "view":
            conversation_id = _conversation_id(content.get("conversation_id"))
            if conversation_id is None:
                await self.send_json({"kind": "error", "detail": "No conversation with that id."})
                return
            if conversation_id != self.viewing:
                if not await database_sync_to_async(_can_view)(self.user, conversation_id):
                    await self.send_json({"kind": "error", "detail": "No conversation with that id."})
                    return
                await self._leave()
                self.viewing = conversation_id
                await self._work("open", conversation_id)
            await self._announce(await sync_to_async(presence.presence_touch)(
                conversation_id=conversation_id, user=self.user, typing=content.get("typing")))
        elif action == "typing" and self.viewing is not None:
            await self._announce(await sync_to_async(presence.presence_touch)(
                conversation_id=self.viewing, user=self.user, typing=bool(content.get("typing", True))))
        elif action == "leave":
            await self._leave()

    async def _leave(self):
        if self.viewing is None:
            return
        conversation_id, self.viewing = self.viewing, None
        await self._work("leave", conversation_id)
        viewers = await sync_to_async(presence.presence_leave)(conversation_id=conversation_id, user_id=self.user.pk)
        await self._announce(viewers, conversation_id=conversation_id)

    async def _work(self, kind: str, conversation_id: int) -> None:
        """Handle time (apps.reports work sessions): best-effort, never breaks the socket."""
        try:
            await database_sync_to_async(agent_work_signalled.send)(sender=Conversation, conversation_id=conversation_id,
                                                                    agent_id=self.user.pk, kind=kind)
        except Exception:  # noqa: BLE001 - a report figure must not cost the agent the live inbox
            log.warning("work session %s for user %s on #%s failed", kind, self.user.pk, conversation_id,
                        exc_info=True)

    async def _announce(self, viewers, conversation_id=None):
        import uuid

        conversation_id = conversation_id or self.viewing
        groups = (await database_sync_to_async(conversation_groups)([conversation_id])).get(conversation_id, [])
        event = {"type": "inbox.event", "kind": "presence", "conversation_id": conversation_id, "viewers": viewers,
                 "eid": uuid.uuid4().hex[:16]}
        for group in groups:  # only those who may see the conversation learn who works on it
            await self.channel_layer.group_send(group, event)

    def _fresh(self, event) -> bool:
        eid = event.get("eid")
        if eid is None:
            return True
        if eid in self.seen_set:
            return False
        self.seen.append(eid)
        self.seen_set.add(eid)
        if len(self.seen) > SEEN_EIDS:
            self.seen_set.discard(self.seen.popleft())
        return True

    async def dispatch(self, message):
        """A push goes straight to its handler. channels' dispatch first closes stale
        database connections through a thread hop (sync_to_async) for every message, a
        push to each socket included: most of the ~260 us of a web worker's CPU a socket
        a push cost, and a whole team's hops waiting in line for one thread. A push
        touches no database; the consumer's own queries go through
        database_sync_to_async, which closes them itself."""
        handler = PUSH_HANDLERS.get(message.get("type"))
        if handler is None:
            await super().dispatch(message)
            return
        await getattr(self, handler)(message)

    async def inbox_event(self, event):
        if self._fresh(event):
            await self.send(text_data=_frame_text([event], batch=False))

    async def inbox_events(self, message):
        """A batch pushed as one group message (realtime.inbox_push_each): one frame
        carrying its changes in order (each frame is ~26 us of the worker's CPU,
        docs/performance-history.md), or, for an old page, each change as its own frame."""
        events = [event for event in message["events"] if self._fresh(event)]
        if self.batch_frames and len(events) > 1:
            await self.send(text_data=_frame_text(events, batch=True))
            return
        for event in events:
            await self.send(text_data=_frame_text([event], batch=False))
