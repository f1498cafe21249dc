"""Writes of the Channels pages: connecting a network, editing, pausing and resuming an
account, new push secrets. Each change is one AuditEntry (`channel.*`) naming what changed,
never a secret's value."""
from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from apps.accounts.services import audit_record
from apps.core.errors import DomainError

from . import health
from .models import SURVEY_CAP_DAYS_MAX, ChannelAccount, Provider, SurveyKind

# model fields the Channels forms may set
EDITABLE = ("name", "handle", "external_user_id", "api_base_url")


def _webhook_handle(name: str) -> str:
    """The generic channel has no handle on a network: one made from its name, unique."""
    base = (slugify(name) or "channel")[:60]
    handle, n = base, 1
    while ChannelAccount.objects.filter(provider=Provider.WEBHOOK, handle=handle).exists():
        n += 1
        handle = f"{base}-{n}"
    return handle


@transaction.atomic
def channel_account_connect(*, provider: str, values: dict, credentials: dict, actor,
                            ip_address: str | None = None) -> tuple[ChannelAccount, dict]:
    """A new account, active at once (the beat polls it on its next tick). Returns it with its new
    push secrets (the generic webhook channel's), to be shown this once."""
    fields = {k: v for k, v in values.items() if k in EDITABLE}
    if provider == Provider.WEBHOOK and not fields.get("handle"):
        fields["handle"] = _webhook_handle(fields.get("name", ""))
    account = ChannelAccount.objects.create(provider=provider, credentials=credentials, is_active=True, **fields)
    secrets = {}
    if provider == Provider.WEBHOOK:
        secrets = health.account_hook_secrets_rotate(account=account, actor=actor)
    audit_record(actor=actor, action="channel.connected", target=str(account), ip_address=ip_address,
                 data={"account": account.pk, "provider": provider, "credential_keys": sorted(credentials),
                       "push_secrets": bool(secrets)})
    return account, secrets


@transaction.atomic
def channel_account_update(*, account: ChannelAccount, values: dict, credentials: dict, actor,
                           ip_address: str | None = None) -> list[str]:
    """Saves the edit form; returns what changed (field names, `credentials: key` for each
    credential replaced or removed). New credentials make the account due for a poll now and
    clear its error count: the backoff was for the old ones."""
    account = ChannelAccount.objects.select_for_update().get(pk=account.pk)
    changed = [k for k in EDITABLE if k in values and getattr(account, k) != values[k]]
    for k in changed:
        setattr(account, k, values[k])
    old = account.credentials or {}
    keys = sorted(k for k in set(old) | set(credentials) if old.get(k) != credentials.get(k))
    update = list(changed)
    if keys:
        account.credentials = credentials
        account.consecutive_errors = 0
        account.next_poll_at = None
        update += ["credentials", "consecutive_errors", "next_poll_at"]
    if not update:
        return []
    account.save(update_fields=[*update, "updated_at"])
    what = changed + [f"credentials: {k}" for k in keys]
    audit_record(actor=actor, action="channel.updated", target=str(account), ip_address=ip_address,
                 data={"account": account.pk, "changed": what})
    return what


@transaction.atomic
def channel_account_active_set(*, account: ChannelAccount, active: bool, actor,
                               ip_address: str | None = None) -> bool:
    """Pauses (no polls, push deliveries refused with 404) or resumes an account. False: no change."""
    updated = ChannelAccount.objects.filter(pk=account.pk, is_active=not active).update(
        is_active=active, next_poll_at=None)
    if not updated:
        return False
    account.is_active = active
    audit_record(actor=actor, action="channel.enabled" if active else "channel.disabled", target=str(account),
                 ip_address=ip_address, data={"account": account.pk})
    return True


@transaction.atomic
def channel_account_survey_policy_set(*, account: ChannelAccount, kind: str, cap_days, actor,
                                      ip_address: str | None = None) -> list[str]:
    """The account's survey policy: the survey sent automatically on resolve ("none": no survey)
    and at most one survey per customer every `cap_days` days (0: no limit). Returns what changed."""
    if kind not in SurveyKind.values:
        raise DomainError("Pick a survey: none, CSAT, CES or NPS.")
    if isinstance(cap_days, bool) or not isinstance(cap_days, int) or not 0 <= cap_days <= SURVEY_CAP_DAYS_MAX:
        raise DomainError(f"The limit is a whole number of days from 0 (no limit) to {SURVEY_CAP_DAYS_MAX}.")
    account = ChannelAccount.objects.select_for_update().get(pk=account.pk)
    values = {"survey_auto": kind, "survey_cap_days": cap_days}
    changed = [k for k, v in values.items() if getattr(account, k) != v]
    if not changed:
        return []
    for k in changed:
        setattr(account, k, values[k])
    account.save(update_fields=[*changed, "updated_at"])
    audit_record(actor=actor, action="channel.survey_policy", target=str(account), ip_address=ip_address,
                 data={"account": account.pk, "survey_auto": kind, "survey_cap_days": cap_days})
    return changed


@transaction.atomic
def channel_hook_secrets_rotate(*, account: ChannelAccount, actor, ip_address: str | None = None) -> dict:
    """New inbound token and signing secret; the old ones stop working at once."""
    secrets = health.account_hook_secrets_rotate(account=account, actor=actor)
    audit_record(actor=actor, action="channel.secrets_rotated", target=str(account), ip_address=ip_address,
                 data={"account": account.pk})
    return secrets
