"""What each row of the conversation list shows, computed once in Python.

templates/inbox/_rows.html only reads the plain values made here. Django's
template engine pays a few microseconds per variable, filter and tag: the rows
used to resolve model attributes and methods, `{% url %}`, `timesince`, `date`
and `truncatechars` per row, ~15 ms for 50 rows (docs/performance.md). The text
is made by the same Django functions those tags and filters call, so a row
reads the same; it is all plain text, escaped by the template like before.
"""
from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.timesince import timesince

from apps.connectors.models import ChannelAccount

from .models import Conversation, Status
from .templatetags.inbox_tags import sentiment_label

SUBJECT_CHARS = 160
DATE_FORMAT = "M j, H:i"  # the SLA due time and the snooze end, in the user's time zone
_ID_SLOT = 987654321  # a stand-in id: one reverse() for the page, the real id put in its place
_DONE = (Status.RESOLVED, Status.CLOSED)


def _labels(model, field: str) -> dict:
    """value -> label, as get_<field>_display gives it."""
    return {value: str(label) for value, label in model._meta.get_field(field).flatchoices}


def conversation_rows(rows: list[dict], *, user, viewers: dict | None = None) -> list[dict]:
    """The display values of a page of rows from selectors.conversation_page_for_user;
    `viewers`: presence.presence_for's, without the user themself."""
    viewers = viewers or {}
    url_before, url_after = reverse("inbox:detail", args=[_ID_SLOT]).rsplit(str(_ID_SLOT), 1)
    priorities = _labels(Conversation, "priority_bucket")
    statuses = _labels(Conversation, "status")
    providers = _labels(ChannelAccount, "provider")
    now = timezone.now()
    assignees = {}  # id -> display name, built once per person by the model's own rule
    out = []
    with timezone.override(user.time_zone):  # what {% timezone user.time_zone %} did for the dates
        for r in rows:
            cid = str(r["id"])
            assignee = None
            if r["assignee_id"] is not None:
                assignee = assignees.get(r["assignee_id"])
                if assignee is None:
                    assignee = assignees[r["assignee_id"]] = get_user_model()(
                        pk=r["assignee_id"], username=r["assignee__username"], first_name=r["assignee__first_name"],
                        last_name=r["assignee__last_name"]).display_name
            classes = f"conv prio-{r['priority_bucket']} status-{r['status']}"
            if r["unread"]:
                classes += " unread"
            if r["sla_breached"]:
                classes += " breached"
            sla = ""
            if r["sla_due_at"] and r["status"] not in _DONE:
                sla = "SLA breached" if r["sla_breached"] else "SLA due " + _local(r["sla_due_at"])
            last = r["last_message_at"]
            out.append({
                "id": cid, "classes": classes, "url": url_before + cid + url_after, "unread": r["unread"],
                "handle": r["identity__handle"], "display_name": r["identity__display_name"],
                "priority": priorities.get(r["priority_bucket"], r["priority_bucket"]),
                "status": statuses.get(r["status"], r["status"]),
                "channel": providers.get(r["channel_account__provider"], r["channel_account__provider"]),
                "is_dm": not r["is_public"], "sentiment": sentiment_label(r["last_sentiment"]), "tags": r["tags"],
                "subject": _subject(r["subject"]),
                "assignee": assignee, "queue": r["queue__name"] if r["queue_id"] is not None else None,
                "last_message_iso": last.isoformat() if last else "",
                "last_message_ago": timesince(last, now) if last else "",
                "sla": sla, "sla_breached": r["sla_breached"],
                "snoozed_until": _local(r["snoozed_until"]) if r["snoozed_until"] else "",
                "viewers": viewers.get(r["id"], []),
            })
    return out


def _subject(subject: str) -> str:
    """`subject|default:"(no text)"|truncatechars:160`. Truncator also NFC-normalises;
    a short subject already in NFC is what it would return, without its cost."""
    if not subject:
        return "(no text)"
    if len(subject) <= SUBJECT_CHARS and unicodedata.is_normalized("NFC", subject):
        return subject
    return Truncator(subject).chars(SUBJECT_CHARS)


def _local(moment) -> str:
    return formats.date_format(timezone.localtime(moment), DATE_FORMAT)
