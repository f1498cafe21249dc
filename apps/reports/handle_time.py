"""Handle time: how long agents work a conversation's thread, from their presence signals
(the thread opened, typing, left) as work sessions; an idle gap over the limit ends one.
A closed session becomes a "handle" metric event (docs/reports.md, "Handle time")."""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.inbox.models import Conversation

from .models import WorkSession
from .services import conversation_dims, metric_event_emit, rollups_apply_after_commit

log = logging.getLogger(__name__)


HANDLE_OPEN, HANDLE_ACTIVE, HANDLE_LEAVE = "open", "active", "leave"


def _handle_conf() -> tuple[dt.timedelta, float]:
    conf = getattr(settings, "REPORTS_HANDLE_TIME", {})
    return dt.timedelta(seconds=conf.get("idle_seconds", 300)), float(conf.get("max_session_seconds", 4 * 3600))


def work_session_signal(*, conversation_id: int, agent_id: int, kind: str,
                        at: dt.datetime | None = None) -> WorkSession | None:
    """Records one presence signal of an agent on a conversation's thread:
    "open" (the thread opened), "active" (typing or other input) or "leave".
    Time between two signals counts when it is at most the idle limit
    (REPORTS_HANDLE_TIME idle_seconds, default 5 min) and the agent had not left;
    a longer gap closes the session at its last activity, and the next signal
    starts a new one."""
    at = at or timezone.now()
    idle, cap = _handle_conf()
    with transaction.atomic():
        session = (WorkSession.objects.select_for_update()
                   .filter(agent_id=agent_id, conversation_id=conversation_id, ended_at__isnull=True).first())
        if session is not None and at - session.last_active_at > idle:
            _work_session_close(session)
            session = None
        if session is None:
            if kind == HANDLE_LEAVE:
                return None
            try:
                with transaction.atomic():  # two signals racing: the other one created it
                    return WorkSession.objects.create(conversation_id=conversation_id, agent_id=agent_id,
                                                      started_at=at, last_active_at=at)
            except IntegrityError:
                return None
        if at > session.last_active_at:
            if not session.away:
                session.active_seconds = min(cap, session.active_seconds
                                             + (at - session.last_active_at).total_seconds())
            session.last_active_at = at
        session.away = kind == HANDLE_LEAVE
        session.save(update_fields=["active_seconds", "last_active_at", "away"])
    return session


def work_sessions_close_idle(*, now: dt.datetime | None = None) -> int:
    """Closes sessions with no signal for longer than the idle limit (the agent
    left, closed the tab or went idle), each at its last activity. Run by the
    reports task before it applies rollups."""
    idle, _ = _handle_conf()
    now = now or timezone.now()
    closed = 0
    with transaction.atomic():
        for session in (WorkSession.objects.select_for_update(skip_locked=True)
                        .filter(ended_at__isnull=True, last_active_at__lt=now - idle).order_by("id")[:1000]):
            _work_session_close(session)
            closed += 1
    return closed


def _work_session_close(session: WorkSession) -> None:
    session.ended_at = session.last_active_at
    session.save(update_fields=["ended_at"])
    if session.active_seconds <= 0:
        return  # opened and never worked on: no handle time to count
    conversation = (Conversation.objects.select_related("queue", "channel_account")
                    .filter(pk=session.conversation_id).first())
    if conversation is None:
        return
    # Counted when the work ended, for the agent who did it (not the assignee).
    metric_event_emit(key=f"handle:{session.pk}", kind="handle", occurred_at=session.ended_at,
                      dims=conversation_dims(conversation, session.agent_id), value=session.active_seconds)
    rollups_apply_after_commit()
