"""The Channels pages (admins): the accounts with their health, "Connect a network" (a form
per network, no JSON), Test connection, the webhook URL and secrets to register, edit,
pause and resume. Who may: docs/roles.md; how: docs/connectors.md, "Connecting a network"."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import require_role
from apps.core.errors import DomainError

from . import selectors, services
from .connection_test import ConnectionResult, connection_test, network_address
from .forms import NETWORK_FORMS, ChannelForm, ConfirmForm, SurveyPolicyForm, secret_hint
from .models import ChannelAccount, Provider
from .providers import polls, provider_class, pushes

# the order of the "Connect a network" page; the demo network last
NETWORKS = [Provider.TWITTER, Provider.MASTODON, Provider.BLUESKY, Provider.REDDIT, Provider.EMAIL,
            Provider.WEBHOOK, Provider.DEMO]
NEEDS = {
    Provider.TWITTER: "A bearer token, or API key & secret with access token & secret (to reply), from the X "
                      "developer portal; the handle to watch.",
    Provider.MASTODON: "The instance URL and an access token (read and write scopes) from Preferences > Development.",
    Provider.BLUESKY: "The handle and an app password from Settings > App passwords.",
    Provider.REDDIT: "A script app's client id and secret from reddit.com/prefs/apps, and the account's username "
                     "and password.",
    Provider.EMAIL: "The mailbox's IMAP and SMTP servers, ports, user and password.",
    Provider.WEBHOOK: "Just a name: cxinbox gives you the URL and secrets your system sends to.",
    Provider.DEMO: "Nothing: a simulated network for trying cxinbox out.",
}


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def hook_url(account: ChannelAccount) -> str:
    """The absolute URL a network pushes to, from SITE_URL (what the network can reach)."""
    path = reverse("hook_receive", kwargs={"provider": account.provider, "account_id": account.pk})
    return settings.SITE_URL.rstrip("/") + path


def _form_class(provider: str) -> type[ChannelForm]:
    try:
        return NETWORK_FORMS[provider]
    except KeyError:
        raise Http404("No such network.") from None


def _unsaved(form: ChannelForm, provider: str, account: ChannelAccount | None = None) -> ChannelAccount:
    """The account as the form describes it, not saved: what Test connection runs with."""
    values = form.account_values()
    fields = {k: v for k, v in values.items() if k in services.EDITABLE}
    test = ChannelAccount(provider=provider, credentials=form.credentials(), **fields)
    if account is not None:
        test.pk = None  # never the saved account's cache keys (Bluesky's session)
        test.hook_secrets = account.hook_secrets
    return test


def _user_id_resolve(form: ChannelForm, provider: str, values: dict,
                     account: ChannelAccount | None = None) -> ConnectionResult | None:
    """X polls by user id: an empty one is looked up with the credentials before saving."""
    if provider != Provider.TWITTER or values.get("external_user_id"):
        return None
    result = connection_test(_unsaved(form, provider, account))
    if result.ok and result.external_user_id:
        values["external_user_id"] = result.external_user_id
    else:
        form.add_error("external_user_id", "Enter the user id, or credentials that can look it up. "
                                           f"{result.message} {result.detail}".strip())
    return result


def _test_in_form(request, form_class, form: ChannelForm, provider: str, account=None):
    """Runs the test with what was typed; a user id the test found is filled into the form."""
    result = connection_test(_unsaved(form, provider, account))
    if result.ok and provider == Provider.TWITTER and result.external_user_id \
            and not form.cleaned_data.get("external_user_id"):
        data = request.POST.copy()
        data["external_user_id"] = result.external_user_id
        form = form_class(data, account=account)
        form.is_valid()
    return form, result


def _form_context(form, provider, result, account=None) -> dict:
    return {"form": form, "provider": provider, "network": Provider(provider).label, "result": result,
            "account": account, "needs": NEEDS.get(provider, ""), "pushes": pushes(provider)}


@require_role(Role.ADMIN)
def channel_list(request):
    rows = selectors.account_health_list()
    return render(request, "connectors/channels.html", {
        "rows": rows, "troubled": sum(r.state in ("failing", "rate_limited", "stale") or r.falling_behind for r in rows),
    })


@require_role(Role.ADMIN)
def channel_connect(request):
    networks = [{"provider": p, "label": Provider(p).label, "needs": NEEDS[p]} for p in NETWORKS]
    return render(request, "connectors/channel_connect.html", {"networks": networks})


@require_role(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def channel_new(request, provider):
    form_class = _form_class(provider)
    form = form_class(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        if request.POST.get("action") == "test":
            form, result = _test_in_form(request, form_class, form, provider)
        else:
            values = form.account_values()
            result = _user_id_resolve(form, provider, values)
            if not form.errors:
                try:
                    with transaction.atomic():
                        account, secrets = services.channel_account_connect(
                            provider=provider, values=values, credentials=form.credentials(), actor=request.user,
                            ip_address=_ip(request))
                except IntegrityError:
                    form.add_error(None, "This account is already connected: edit that one instead.")
                else:
                    if secrets:  # shown in this answer only: never stored anywhere a page can read back
                        return render(request, "connectors/channel_detail.html",
                                      _detail_context(account, fresh_secrets=secrets, just_connected=True))
                    flash.success(request, f"{account.name} is connected. The first poll runs within a minute.")
                    return redirect("connectors:channel_detail", pk=account.pk)
    return render(request, "connectors/channel_form.html", _form_context(form, provider, result),
                  status=400 if request.method == "POST" and form.errors else 200)


def _detail_context(account: ChannelAccount, *, fresh_secrets: dict | None = None, just_connected=False,
                    survey_form: SurveyPolicyForm | None = None) -> dict:
    stored = account.credentials or {}
    form_class = NETWORK_FORMS.get(account.provider)
    creds = []
    if form_class is not None:
        probe = form_class.base_fields
        for name, key in form_class.CREDENTIALS.items():
            field = probe[name]
            secret = getattr(field, "secret", False)
            value = stored.get(key)
            shown = secret_hint(value) if secret else ("" if value in (None, "") else str(value))
            creds.append({"label": field.label, "key": key, "shown": shown or "not set", "secret": secret})
    hook = account.hook_secrets or {}
    row = selectors.account_health_get(account_id=account.pk)
    return {
        "account": account, "row": row, "health_rows": [row] if row else [],
        "network": account.get_provider_display(), "pushes": pushes(account.provider), "polls": polls(account.provider),
        "hook_url": hook_url(account) if pushes(account.provider) else "",
        "fresh_secrets": fresh_secrets or {}, "just_connected": just_connected,
        "hook_hints": {k: secret_hint(v) for k, v in hook.items()}, "credentials": creds,
        "address": network_address(account), "site_url": settings.SITE_URL,
        "survey_form": survey_form or SurveyPolicyForm(initial={
            "survey_auto": account.survey_auto, "survey_cap_days": account.survey_cap_days}),
        "survey_private": provider_class(account.provider).supports_private_replies,
    }


@require_role(Role.ADMIN)
def channel_detail(request, pk):
    account = get_object_or_404(ChannelAccount, pk=pk)
    return render(request, "connectors/channel_detail.html", _detail_context(account))


@require_role(Role.ADMIN)
@require_POST
def channel_surveys(request, pk):
    """The account's survey policy: which survey is sent on resolve, and how often at most."""
    account = get_object_or_404(ChannelAccount, pk=pk)
    form = SurveyPolicyForm(request.POST)
    if form.is_valid():
        try:
            changed = services.channel_account_survey_policy_set(
                account=account, kind=form.cleaned_data["survey_auto"], cap_days=form.cleaned_data["survey_cap_days"],
                actor=request.user, ip_address=_ip(request))
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            flash.success(request, "Survey policy saved." if changed else "Nothing changed.")
            return redirect("connectors:channel_detail", pk=account.pk)
    return render(request, "connectors/channel_detail.html", _detail_context(account, survey_form=form), status=400)


@require_role(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def channel_edit(request, pk):
    account = get_object_or_404(ChannelAccount, pk=pk)
    form_class = _form_class(account.provider)
    form = form_class(request.POST or None, account=account)
    result = None
    if request.method == "POST" and form.is_valid():
        if request.POST.get("action") == "test":
            form, result = _test_in_form(request, form_class, form, account.provider, account)
        else:
            values = form.account_values()
            result = _user_id_resolve(form, account.provider, values, account)
            if not form.errors:
                try:
                    with transaction.atomic():
                        changed = services.channel_account_update(
                            account=account, values=values, credentials=form.credentials(), actor=request.user,
                            ip_address=_ip(request))
                except IntegrityError:
                    form.add_error(None, "Another account already has this handle.")
                else:
                    flash.success(request, f"Saved: {', '.join(changed)}." if changed else "Nothing changed.")
                    return redirect("connectors:channel_detail", pk=account.pk)
    return render(request, "connectors/channel_form.html", _form_context(form, account.provider, result, account),
                  status=400 if request.method == "POST" and form.errors else 200)


@require_role(Role.ADMIN)
@require_POST
def channel_test(request, pk):
    """Test connection with the stored credentials."""
    account = get_object_or_404(ChannelAccount, pk=pk)
    result = connection_test(account)
    text = f"{result.message} {result.detail}".strip()
    (flash.success if result.ok else flash.error)(request, text)
    return redirect("connectors:channel_detail", pk=account.pk)


@require_role(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def channel_disable(request, pk):
    """Pausing stops polls and refuses push deliveries: asked for once more."""
    account = get_object_or_404(ChannelAccount.objects.defer("credentials", "hook_secrets"), pk=pk)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.channel_account_active_set(account=account, active=False, actor=request.user,
                                            ip_address=_ip(request))
        flash.success(request, f"{account.name} is paused: no polls, and push deliveries are refused.")
        return redirect("connectors:channel_detail", pk=account.pk)
    return render(request, "connectors/channel_confirm.html", {
        "account": account, "form": form, "title": f"Pause {account.name}?", "button": "Pause this channel",
        "consequences": ["No new mentions are fetched from this account until it is resumed.",
                         "The network's push deliveries to its webhook URL are refused (404): networks may stop "
                         "sending after repeated refusals.",
                         "Conversations already in the inbox stay; replies to them are still sent."],
    }, status=400 if request.method == "POST" else 200)


@require_role(Role.ADMIN)
@require_POST
def channel_enable(request, pk):
    account = get_object_or_404(ChannelAccount.objects.defer("credentials", "hook_secrets"), pk=pk)
    services.channel_account_active_set(account=account, active=True, actor=request.user, ip_address=_ip(request))
    flash.success(request, f"{account.name} is active again: it is polled within a minute.")
    return redirect("connectors:channel_detail", pk=account.pk)


@require_role(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def channel_secrets(request, pk):
    """New push secrets for the generic webhook channel, shown once; replacing existing ones
    is asked for once more (the sender's old ones stop working at once)."""
    account = get_object_or_404(ChannelAccount, pk=pk)
    if account.provider != Provider.WEBHOOK:
        flash.info(request, f"{account.get_provider_display()} has no push secrets of cxinbox's: its deliveries are "
                            "verified with its own credentials (edit them to rotate).")
        return redirect("connectors:channel_detail", pk=account.pk)
    had = bool(account.hook_secrets)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and (form.is_valid() or not had):
        secrets = services.channel_hook_secrets_rotate(account=account, actor=request.user, ip_address=_ip(request))
        return render(request, "connectors/channel_detail.html", _detail_context(account, fresh_secrets=secrets))
    return render(request, "connectors/channel_confirm.html", {
        "account": account, "form": form if had else None, "title": f"New secrets for {account.name}?",
        "button": "Replace the secrets" if had else "Create the secrets",
        "consequences": ["The current token and signing secret stop working at once: deliveries signed with them "
                         "are refused until the sender has the new ones."] if had else
                        ["A token and a signing secret are created and shown once."],
    }, status=400 if request.method == "POST" else 200)
