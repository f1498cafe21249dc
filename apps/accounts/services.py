"""Writes on users, teams, presence, tokens and the audit log.

Keyword-only, atomic; what others must hear about (routing, the live inbox)
is told after commit."""
from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import DomainError

from .availability import agent_availability_changed
from .models import ApiToken, AuditEntry, Presence, Role, Team, User, token_hash
from .permissions import user_has_role

log = logging.getLogger(__name__)


# --- audit ------------------------------------------------------------------------------------------

def audit_record(*, actor, action: str, target: str = "", data: dict | None = None,
                 ip_address: str | None = None) -> AuditEntry:
    """One audit row for a change that is not on a conversation (logins, rule and
    SLA edits, tokens). `actor` may be None (system) or an anonymous user."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor, action=action, target=str(target)[:255], data=data or {}, ip_address=ip_address or None,
    )


# --- presence -----------------------------------------------------------------------------------------

def agent_availability_notify(user: User) -> None:
    """Announces (after commit) that an agent can take work, or no longer can
    (availability.agent_availability_changed: routing listens). A receiver's error is
    logged: presence must stick even if routing hiccups."""

    def _send():
        for handler, result in agent_availability_changed.send_robust(sender=User, agent=user):
            if isinstance(result, Exception):
                log.error("agent_availability_changed (%s) failed for %s", getattr(handler, "__qualname__", handler),
                          user.pk, exc_info=result)

    transaction.on_commit(_send)


@transaction.atomic
def user_presence_set(*, user: User, presence: str, manual: bool = True, actor=None) -> User:
    """Sets online/away/offline. `manual` marks the agent's own choice (activity
    then leaves an away/offline alone); automatic changes (activity, idle sweep,
    login, logout) pass manual=False."""
    if presence not in Presence.values:
        raise DomainError(f"Unknown presence {presence!r}.")
    locked = User.objects.select_for_update().get(pk=user.pk)
    old = locked.presence
    now = timezone.now()
    locked.presence = presence
    locked.presence_manual = manual and presence != Presence.ONLINE
    fields = ["presence", "presence_manual"]
    if presence == Presence.ONLINE:
        locked.last_seen_at = now
        fields.append("last_seen_at")
    locked.save(update_fields=fields)
    user.presence, user.presence_manual = locked.presence, locked.presence_manual
    if presence == Presence.ONLINE:
        user.last_seen_at = now
    if old != presence:
        audit_record(actor=actor or user, action="presence.changed", target=user.username,
                     data={"from": old, "to": presence, "manual": manual})
        agent_availability_notify(locked)
    return user


def user_activity_touch(*, user: User, now=None) -> None:
    """Activity (a page, an API call, a websocket heartbeat): keeps last_seen_at
    fresh and brings an idle-away agent back online. Writes at most once per
    PRESENCE_TOUCH_SECONDS so busy pages do not write on every request."""
    now = now or timezone.now()
    fresh = user.last_seen_at and (now - user.last_seen_at).total_seconds() < settings.PRESENCE_TOUCH_SECONDS
    if user.presence != Presence.ONLINE and not user.presence_manual:
        user_presence_set(user=user, presence=Presence.ONLINE, manual=False)
        return
    if not fresh:
        User.objects.filter(pk=user.pk).update(last_seen_at=now)
        user.last_seen_at = now


def presence_sweep(*, now=None) -> dict:
    """The beat task's work: online agents idle for PRESENCE_AWAY_AFTER_SECONDS
    become away; away (not by choice) for PRESENCE_OFFLINE_AFTER_SECONDS become
    offline. Returns how many moved."""
    now = now or timezone.now()
    away_cut = now - timezone.timedelta(seconds=settings.PRESENCE_AWAY_AFTER_SECONDS)
    offline_cut = now - timezone.timedelta(seconds=settings.PRESENCE_OFFLINE_AFTER_SECONDS)
    moved = {"away": 0, "offline": 0}
    idle = User.objects.filter(presence=Presence.ONLINE, is_active=True).exclude(last_seen_at__gte=away_cut)
    for user in idle:
        user_presence_set(user=user, presence=Presence.AWAY, manual=False)
        moved["away"] += 1
    gone = User.objects.filter(presence=Presence.AWAY, presence_manual=False, is_active=True).exclude(
        last_seen_at__gte=offline_cut)
    for user in gone:
        user_presence_set(user=user, presence=Presence.OFFLINE, manual=False)
        moved["offline"] += 1
    return moved


# --- users and teams ----------------------------------------------------------------------------------

@transaction.atomic
def user_capacity_set(*, user: User, capacity: int, channel_capacity: dict | None = None, actor) -> User:
    if capacity < 0 or capacity > 500:
        raise DomainError("Capacity must be between 0 and 500.")
    cleaned = {}
    for channel, value in (channel_capacity or {}).items():
        # A provider name (twitter, email...): a NUL in a key was a 500 at the JSONB write.
        if not isinstance(channel, str) or not CHANNEL_KEY.fullmatch(channel):
            raise DomainError(f"Unknown channel {str(channel)[:40]!r}: a provider name such as twitter or email.")
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise DomainError(f"Capacity for {channel} must be a whole number.") from None
        if value < 0 or value > 500:
            raise DomainError(f"Capacity for {channel} must be between 0 and 500.")
        cleaned[str(channel)] = value
    old = {"capacity": user.capacity, "channel_capacity": user.channel_capacity}
    user.capacity, user.channel_capacity = capacity, cleaned
    user.save(update_fields=["capacity", "channel_capacity"])
    audit_record(actor=actor, action="user.capacity_changed", target=user.username,
                 data={"from": old, "to": {"capacity": capacity, "channel_capacity": cleaned}})
    agent_availability_notify(user)
    return user


CHANNEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@transaction.atomic
def team_create(*, name: str, time_zone: str = "UTC", actor) -> Team:
    name = (name or "").strip()
    if not name:
        raise DomainError("A team needs a name.")
    if len(name) > Team._meta.get_field("name").max_length:
        raise DomainError(f"A team name has at most {Team._meta.get_field('name').max_length} characters.")
    if Team.objects.filter(name__iexact=name).exists():
        raise DomainError(f"A team called {name!r} exists already.")
    _check_time_zone(time_zone)
    team = Team.objects.create(name=name, time_zone=time_zone)
    audit_record(actor=actor, action="team.created", target=name)
    return team


def _check_time_zone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        raise DomainError(f"Unknown time zone {str(name)[:60]!r}.") from None


@transaction.atomic
def team_members_set(*, team: Team, members, leads=None, actor) -> Team:
    """Replaces the team's members (and leads, when given). Leads are members too."""
    members = set(members)
    old_members = set(team.members.values_list("username", flat=True))
    if not user_has_role(actor, Role.ADMIN):
        # Moving someone in from another team is an admin's call (docs/roles.md, Ownership): a lead
        # adds people of no team or of teams they lead.
        led = set(Team.objects.filter(leads=actor).values_list("pk", flat=True))
        elsewhere = sorted({u.username for u in members if u.username not in old_members
                            and set(u.teams.values_list("pk", flat=True)) - led})
        if elsewhere:
            raise DomainError(f"Only an admin moves people from another team: {', '.join(elsewhere)}.")
    old_leads = set(team.leads.values_list("username", flat=True))
    if leads is not None:
        leads = set(leads)
        bad = [u.username for u in leads if u.role not in (Role.SUPERVISOR, Role.ADMIN) and not u.is_superuser]
        if bad:
            raise DomainError(f"Only supervisors and admins can lead a team: {', '.join(sorted(bad))}.")
        members |= leads
        team.leads.set(leads)
    team.members.set(members)
    new_members = {u.username for u in members}
    data = {"added": sorted(new_members - old_members), "removed": sorted(old_members - new_members)}
    if leads is not None:
        new_leads = {u.username for u in leads}
        data.update(leads_added=sorted(new_leads - old_leads), leads_removed=sorted(old_leads - new_leads))
    audit_record(actor=actor, action="team.members_changed", target=team.name, data=data)
    return team


# --- API tokens ---------------------------------------------------------------------------------------

@transaction.atomic
def api_token_create(*, user: User, name: str, ip_address: str | None = None) -> tuple[ApiToken, str]:
    """Returns the token row and its key. The key is not stored: show it once."""
    name = (name or "").strip()[:100]
    if not name:
        raise DomainError("Give the token a name, e.g. what will use it.")
    if user.api_tokens.filter(revoked_at__isnull=True).count() >= settings.API_TOKENS_PER_USER:
        raise DomainError(f"You have {settings.API_TOKENS_PER_USER} active tokens; revoke one first.")
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(user=user, name=name, prefix=key[: ApiToken.PREFIX_LENGTH],
                                    key_hash=token_hash(key))
    audit_record(actor=user, action="token.created", target=f"{user.username}:{name}",
                 data={"token_id": token.pk, "prefix": token.prefix}, ip_address=ip_address)
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor, ip_address: str | None = None) -> ApiToken:
    """Revoking is final; the next request with the key gets a 401."""
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="token.revoked", target=f"{token.user.username}:{token.name}",
                     data={"token_id": token.pk, "prefix": token.prefix}, ip_address=ip_address)
    return token
