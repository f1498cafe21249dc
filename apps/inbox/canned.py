"""Canned responses with variables, rendered on the server.

Only the listed variables are replaced, by plain substitution: the text is
never run through the template engine (an editor of canned responses must not
be able to reach template tags, filters or object attributes). The result is
plain text; templates escape it like any other user text."""
from __future__ import annotations

import re

VARIABLE_RE = re.compile(r"\{\{\s*(customer|agent)\.(\w+)\s*\}\}")


def _customer_values(conversation) -> dict:
    identity = conversation.identity
    name = (conversation.customer.name if conversation.customer_id else "") or identity.display_name or (
        f"@{identity.handle}" if identity.handle else "there")
    return {"name": name, "first_name": name.split()[0] if name else "",
            "handle": f"@{identity.handle}" if identity.handle else ""}


def _agent_values(agent) -> dict:
    return {"first_name": agent.first_name or agent.username, "name": agent.display_name,
            "last_name": agent.last_name, "signature": agent.signature}


def canned_render(text: str, *, conversation, agent) -> str:
    """Replaces {{ customer.name }}, {{ customer.first_name }}, {{ customer.handle }},
    {{ agent.first_name }}, {{ agent.name }}, {{ agent.last_name }}; anything else stays as typed,
    so the agent sees it before sending."""
    values = {"customer": _customer_values(conversation), "agent": _agent_values(agent)}

    def replace(match):
        value = values[match.group(1)].get(match.group(2))
        return match.group(0) if value is None else value

    return VARIABLE_RE.sub(replace, text or "")


def canned_for_composer(responses, *, conversation, agent) -> list[dict]:
    """What the composer's "/" picker needs, already rendered for this conversation."""
    return [{"id": r.pk, "shortcut": r.shortcut, "title": r.title,
             "text": canned_render(r.text, conversation=conversation, agent=agent)} for r in responses]
