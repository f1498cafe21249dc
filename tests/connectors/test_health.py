"""Connector health: what supervisors see per account, and a broken account
(revoked token) retried with backoff without holding up the others."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.connectors.standins.mastodon import MastodonStandIn
from apps.inbox.models import Message
from apps.ingest.tasks import poll_due_accounts_task
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mastodon(settings):
    with MastodonStandIn() as server:
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        yield server


def _mastodon_account(server, name, token):
    return ChannelAccountFactory(provider="mastodon", name=name, handle=f"@{name}@mastodon.example",
                                 external_user_id=server.brand["id"], api_base_url=server.base_url,
                                 credentials={"access_token": token})


def test_revoked_account_backs_off_while_the_healthy_one_keeps_polling(mastodon, eager_celery):
    good = _mastodon_account(mastodon, "good", "mastodon-token")
    broken = _mastodon_account(mastodon, "broken", "revoked-token")
    customer = mastodon.add_account("zoe")
    mastodon.add_status("order 1 missing", author=customer)

    poll_due_accounts_task()
    good.refresh_from_db()
    broken.refresh_from_db()
    assert Message.objects.filter(channel_account=good).count() == 1 and good.consecutive_errors == 0
    assert broken.consecutive_errors == 1 and "refused the credentials (401)" in broken.last_error
    first_wait = broken.next_poll_at - broken.last_polled_at
    assert first_wait >= dt.timedelta(minutes=5)  # revoked tokens are not hammered

    # The next beat: the broken account is not due, the healthy one polls on.
    mastodon.add_status("order 2 missing", author=customer)
    calls_before = sum(1 for r in mastodon.requests if r["headers"].get("Authorization") == "Bearer revoked-token")
    poll_due_accounts_task()
    assert Message.objects.filter(channel_account=good).count() == 2
    assert sum(1 for r in mastodon.requests if r["headers"].get("Authorization") == "Bearer revoked-token") == calls_before

    # Once due again it is retried, and keeps failing with a longer wait.
    ChannelAccount.objects.filter(pk=broken.pk).update(next_poll_at=timezone.now() - dt.timedelta(seconds=1))
    poll_due_accounts_task()
    broken.refresh_from_db()
    assert broken.consecutive_errors == 2
    assert broken.next_poll_at - broken.last_polled_at >= first_wait

    # The admin fixes the token: the next poll succeeds and clears the error.
    ChannelAccount.objects.filter(pk=broken.pk).update(credentials={"access_token": "mastodon-token"},
                                                       next_poll_at=None)
    poll_due_accounts_task()
    broken.refresh_from_db()
    assert broken.consecutive_errors == 0 and broken.last_error == ""
    assert Message.objects.filter(channel_account=broken).count() == 2


def test_a_hanging_network_does_not_delay_other_accounts_polls(mastodon, settings, eager_celery):
    """One account's network stalls until the timeout; the others' polls are separate tasks."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    with MastodonStandIn(host="slow.example") as slow_server:
        slow = _mastodon_account(slow_server, "slow", "mastodon-token")
        fast = _mastodon_account(mastodon, "fast", "mastodon-token")
        slow_server.add_fault("GET", "/api/v1/notifications", delay=2.0, status=200, body=b"[]")
        mastodon.add_status("hello", author=mastodon.add_account("yan"))
        poll_due_accounts_task()
    slow.refresh_from_db()
    fast.refresh_from_db()
    assert "did not answer in time" in slow.last_error and slow.next_poll_at > timezone.now()
    assert fast.last_error == "" and Message.objects.filter(channel_account=fast).count() == 1


def _login(client, user):
    client.force_login(user)
    return client


def test_health_page_shows_poll_lag_errors_and_rate_limits(client, supervisor):
    now = timezone.now()
    ChannelAccountFactory(name="Healthy X", last_polled_at=now, last_success_at=now - dt.timedelta(seconds=12))
    ChannelAccountFactory(name="Revoked X", last_polled_at=now, last_success_at=now - dt.timedelta(hours=2),
                          consecutive_errors=3, next_poll_at=now + dt.timedelta(minutes=8),
                          last_error="Twitter refused the credentials (401): <script>alert(1)</script>")
    ChannelAccountFactory(name="Limited X", last_polled_at=now, last_success_at=now,
                          rate_limited_until=now + dt.timedelta(minutes=4))
    ChannelAccountFactory(provider="webhook", name="Shop chat", push_refused_count=2,
                          last_push_error="The signature does not match.", credentials={})
    resp = _login(client, supervisor).get("/connectors/health/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "Failing (3 in a row)" in html and "Rate limited" in html and "Push only" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert html.index("Revoked X") < html.index("Healthy X")  # troubled accounts first
    assert 'data-lag-seconds="12"' in html or 'data-lag-seconds="13"' in html
    assert "2 refused: The signature does not match." in html
    assert "2 accounts need attention" in html


def test_health_page_and_api_are_for_supervisors_and_admins(client, agent, marketing_user, admin_user, api_client):
    ChannelAccountFactory(name="Acme")
    assert _login(client, agent).get("/connectors/health/").status_code == 403
    assert _login(client, marketing_user).get("/connectors/health/").status_code == 403
    assert _login(client, admin_user).get("/connectors/health/").status_code == 200
    api_client.force_authenticate(agent)
    resp = api_client.get("/api/v1/channel-accounts/health/")
    assert resp.status_code == 403 and "detail" in resp.json()
    api_client.force_authenticate(admin_user)
    [row] = api_client.get("/api/v1/channel-accounts/health/").json()
    assert row["name"] == "Acme" and row["state"] == "waiting" and row["consecutive_errors"] == 0


def test_poll_now_lifts_the_backoff_and_polls(client, supervisor, mastodon, eager_celery,
                                              django_capture_on_commit_callbacks):
    broken = _mastodon_account(mastodon, "acme", "mastodon-token")
    ChannelAccount.objects.filter(pk=broken.pk).update(consecutive_errors=4, last_error="401",
                                                       next_poll_at=timezone.now() + dt.timedelta(hours=1))
    mastodon.add_status("hi", author=mastodon.add_account("kim"))
    with django_capture_on_commit_callbacks(execute=True):
        resp = _login(client, supervisor).post(f"/connectors/health/{broken.pk}/poll/")
    assert resp.status_code == 302
    broken.refresh_from_db()
    assert broken.consecutive_errors == 0 and Message.objects.filter(channel_account=broken).count() == 1


def test_hook_secrets_are_rotated_by_admins_and_never_listed(api_client, admin_user, supervisor):
    account = ChannelAccountFactory(provider="webhook", credentials={}, hook_secrets={"inbound_token": "old"})
    api_client.force_authenticate(supervisor)
    assert api_client.post(f"/api/v1/channel-accounts/{account.pk}/hook-secrets/").status_code == 403
    api_client.force_authenticate(admin_user)
    resp = api_client.post(f"/api/v1/channel-accounts/{account.pk}/hook-secrets/")
    assert resp.status_code == 200
    data = resp.json()
    assert data["hook_url"].endswith(f"/hooks/webhook/{account.pk}/") and len(data["inbound_token"]) > 30
    account.refresh_from_db()
    assert account.hook_secrets["inbound_token"] == data["inbound_token"]
    listed = api_client.get(f"/api/v1/channel-accounts/{account.pk}/").json()
    assert "hook_secrets" not in listed and "credentials" not in listed
    assert data["inbound_token"] not in str(listed)
