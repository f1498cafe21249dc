"""What each row of the conversation list shows, computed once in Python, and its markup.

Django's template engine pays a few microseconds per variable, filter and tag: the rows
used to resolve model attributes and methods, `{% url %}`, `timesince`, `date` and
`truncatechars` per row, ~15 ms for 50 rows (docs/performance-history.md). The text is made by
the same Django functions those tags and filters call, so a row reads the same. The
row's markup is made here too (row_html), every value escaped by html.escape as Django's
escape does: printing ~25 values a row through the template was still the largest part of
the list page's CPU under load (2.9 ms of 50 rows against ~0.8 ms here; the markup is
byte for byte what templates/inbox/_rows.html printed before). _rows.html prints the rows.
"""
from __future__ import annotations

import unicodedata
from html import escape

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
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
                # the latest customer message: what the agent acts on (priority and sentiment are its)
                "subject": _subject(r.get("latest_text") or r["subject"]),
                "assignee": assignee, "queue": r["queue__name"] if r["queue_id"] is not None else None,
                "last_message_iso": last.isoformat() if last else "",
                "last_message_ago": timesince(last, now) if last else "",
                "sla": sla, "sla_breached": r["sla_breached"],
                "snoozed_until": _local(r["snoozed_until"]) if r["snoozed_until"] else "",
                "viewers": viewers.get(r["id"], []),
            })
    for row in out:
        row["html"] = row_html(row)
    return out


def row_html(r: dict) -> SafeString:
    """One row's `<li>`: every value escaped (user text: handle, name, subject, tags, queue,
    assignee, viewers)."""
    e = _escaped
    who = ('<span class="dot" title="Unread"><span class="sr-only">Unread: </span></span>' if r["unread"] else "")
    who += "@" + e(r["handle"]) + (f" <small>{e(r['display_name'])}</small>" if r["display_name"] else "")
    sentiment = (f'<span class="sentiment s-{e(r["sentiment"])}">{e(r["sentiment"])}</span>'
                 if r["sentiment"] else "")
    tags = "".join(f'<span class="badge tag">#{e(t)}</span>' for t in r["tags"])
    meta = (e(r["assignee"]) if r["assignee"] is not None else "Unassigned") + (
        f" · {e(r['queue'])}" if r["queue"] is not None else "")
    when = (f'<time datetime="{e(r["last_message_iso"])}">{e(r["last_message_ago"])} ago</time>'
            if r["last_message_iso"] else "")
    sla = (f' · <span class="sla{" sla-breached" if r["sla_breached"] else ""}">{e(r["sla"])}</span>'
           if r["sla"] else "")
    snoozed = f" · snoozed until {e(r['snoozed_until'])}" if r["snoozed_until"] else ""
    viewers = "".join(f'<span class="viewer{" typing" if v["typing"] else ""}">{e(v["name"])} '
                      f'{"typing…" if v["typing"] else "viewing"}</span>' for v in r["viewers"])
    return mark_safe(  # noqa: S308 - every value above is escaped
        f'<li class="{e(r["classes"])}" data-id="{e(r["id"])}">\n'
        f'  <a href="{e(r["url"])}" class="conv-link">\n'
        f'    <span class="who">{who}</span>\n'
        f'    <span class="tags-row">\n'
        f'      <span class="badge prio">{e(r["priority"])}</span>\n'
        f'      <span class="badge status">{e(r["status"])}</span>\n'
        f'      <span class="badge channel">{e(r["channel"])}{" · DM" if r["is_dm"] else ""}</span>\n'
        f'      {sentiment}\n'
        f'      {tags}\n'
        f'    </span>\n'
        f'    <span class="subject">{e(r["subject"])}</span>\n'
        f'    <span class="meta">\n'
        f'      {meta}\n'
        f'      · {when}\n'
        f'      {sla}\n'
        f'      {snoozed}\n'
        f'    </span>\n'
        f'    <span class="presence" data-presence="{e(r["id"])}">{viewers}</span>\n'
        f'  </a>\n'
        f'</li>\n')


def _escaped(value) -> str:
    """What the template printed for a value: str() of it, escaped as Django's escape does."""
    return escape(str(value))


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
