"""Small display helpers for the inbox templates. Everything user-written is
escaped before any markup is added."""
from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def sentiment_label(score):
    """VADER compound -> positive / neutral / negative (DESIGN.md thresholds); '' when unscored."""
    if score is None:
        return ""
    if score >= 0.05:
        return "positive"
    if score <= -0.05:
        return "negative"
    return "neutral"


MENTION_RE = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")


@register.filter(needs_autoescape=True)
def highlight_mentions(text, autoescape=True):
    """Escapes a note and marks its @mentions."""
    escaped = conditional_escape(text or "")
    return mark_safe(MENTION_RE.sub(lambda m: f'<strong class="mention">@{m.group(1)}</strong>', str(escaped)))


EVENT_TEXT = {
    "assigned": "assigned", "unassigned": "unassigned", "status_changed": "changed status",
    "reply_queued": "queued a reply", "reply_sent": "reply sent", "reply_failed": "reply failed",
    "reply_retried": "retried a reply", "note_added": "added a note", "snoozed": "snoozed",
    "unsnoozed": "woke the conversation", "tags_changed": "changed tags", "priority_changed": "changed priority",
    "marked_spam": "marked as spam", "unmarked_spam": "not spam after all",
    "survey_not_sent": "survey not sent",
}


@register.simple_tag
def event_line(event):
    """One audit row as a sentence: who, what, and the details that matter."""
    d = event.data or {}
    what = EVENT_TEXT.get(event.kind, event.kind.replace("_", " "))
    details = []
    if event.kind == "status_changed":
        details.append(f"{d.get('old')} → {d.get('new')}")
    elif event.kind in ("assigned", "unassigned"):
        if d.get("to"):
            details.append(f"to {d['to']}")
        if d.get("from"):
            details.append(f"from {d['from']}")
    elif event.kind == "priority_changed":
        details.append(f"{d.get('old', '')} → {d.get('new', '')}".strip())
        if d.get("score") is not None:
            details.append(f"score {d['score']}")
    elif event.kind == "tags_changed":
        if d.get("added"):
            details.append("+" + ", +".join(d["added"]))
        if d.get("removed"):
            details.append("−" + ", −".join(d["removed"]))
    elif event.kind == "snoozed" and d.get("until"):
        details.append(f"until {d['until'][:16].replace('T', ' ')} UTC")
    elif event.kind == "reply_failed" and d.get("reason"):
        details.append(d["reason"])
    elif event.kind == "survey_not_sent" and d.get("survey") in ("csat", "ces", "nps"):
        what = f"{'automatic ' if d.get('automatic') is True else ''}{d['survey'].upper()} {what}"
    elif event.kind == "note_added" and d.get("mentions"):
        details.append("mentioned " + ", ".join("@" + m for m in d["mentions"]))
    for key in ("rule", "reason", "why"):
        if d.get(key) and isinstance(d[key], str):
            details.append(d[key])
    who = event.actor.display_name if event.actor_id and event.actor else "system"
    return format_html("<strong>{}</strong> {}{}", who, what, ": " + "; ".join(map(str, details)) if details else "")


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with some parameters changed (None or '' drops one); page resets."""
    params = context["request"].GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def initials(name):
    parts = [p for p in str(name or "").replace("@", " ").split() if p]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""


@register.filter
def split_words(value):
    return str(value).split()


@register.filter
def message_sentiment(message):
    """The stored label, else one derived from the score; '' when the message was not analysed yet."""
    return message.sentiment_label or sentiment_label(message.sentiment)
