"""Canned responses with variables, rendered on the server.

Only the listed variables are replaced, by plain substitution: the text is
never run through the template engine (an editor of canned responses must not
be able to reach template tags, filters or object attributes). The result is
plain text; templates escape it like any other user text.

Editing them is here too (not in accounts, below the inbox in the layers): a team's leads
edit their team's, admins every one, each change audited."""
from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.text import slugify

from apps.accounts.permissions import can_edit_canned
from apps.accounts.services import audit_record
from apps.core.errors import DomainError

from .models import CannedResponse

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


# --- editing them (team leads for their team, admins for all; audited) ------------------------------

def _canned_check(*, actor, team) -> None:
    if not can_edit_canned(actor, team):
        who = "admins" if team is None else f"leads of {team.name} and admins"
        raise PermissionDenied(f"Only {who} can change these canned responses.")


@transaction.atomic
def canned_response_save(*, actor, shortcut: str, title: str, text: str, team=None, canned=None):
    """Creates or updates a canned response; `team` None makes it global (all teams)."""
    if canned is not None:
        _canned_check(actor=actor, team=canned.team)  # may they touch the one that exists...
    _canned_check(actor=actor, team=team)  # ...and where it is going
    shortcut = slugify(shortcut or "")[:50]
    title, text = (title or "").strip()[:100], (text or "").strip()
    if not shortcut or not title or not text:
        raise DomainError("A canned response needs a shortcut, a title and a text.")
    clash = CannedResponse.objects.filter(shortcut=shortcut, team=team)
    if canned is not None:
        clash = clash.exclude(pk=canned.pk)
    if clash.exists():
        raise DomainError(f"/{shortcut} exists already for {team.name if team else 'all teams'}.")
    created = canned is None
    canned = canned or CannedResponse()
    canned.shortcut, canned.title, canned.text, canned.team = shortcut, title, text, team
    canned.save()
    audit_record(actor=actor, action="canned.created" if created else "canned.updated",
                 target=f"/{shortcut} ({team.name if team else 'global'})", data={"canned_id": canned.pk})
    return canned


@transaction.atomic
def canned_response_delete(*, actor, canned) -> None:
    _canned_check(actor=actor, team=canned.team)
    audit_record(actor=actor, action="canned.deleted",
                 target=f"/{canned.shortcut} ({canned.team.name if canned.team else 'global'})",
                 data={"canned_id": canned.pk, "text": canned.text[:500]})
    canned.delete()
