"""Polling is never late for long (issue 18): transient errors back off briefly (5 s
doubling, capped at a poll interval of 15 s, jittered), a 429 waits for its reset, and an account
whose last successful poll is old shows as falling behind on the connector-health
page. The real tweepy client polls the stand-in Twitter API."""
import datetime as dt
import time

import pytest
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.inbox.models import Message
from apps.ingest.tasks import poll_due_accounts_task
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


def _mentions_path(account):
    return f"/2/users/{account.external_user_id}/mentions"


def _beat_when_due(account):
    """What beat does once the account's next poll time has come (time moved on)."""
    ChannelAccount.objects.filter(pk=account.pk).update(next_poll_at=timezone.now() - dt.timedelta(seconds=1))
    poll_due_accounts_task()
    account.refresh_from_db()
    return account


def test_transient_errors_back_off_briefly_and_a_success_resets_them(twitter_api, twitter_account, eager_celery):
    twitter_api.add_user("11", "alice")
    twitter_api.add_fault("GET", _mentions_path(twitter_account), status=500, remaining=6)
    waits = []
    for n in range(1, 7):
        account = _beat_when_due(twitter_account)
        assert account.consecutive_errors == n and "500" in account.last_error
        waits.append((account.next_poll_at - account.last_polled_at).total_seconds())
    # 5 s doubling, the upper half jittered, never more than a poll interval (15 s): six in
    # a row used to put the next poll 16 minutes out (30 s doubling to an hour)
    bounds = [(2.5, 5), (5, 10), (7.5, 15), (7.5, 15), (7.5, 15), (7.5, 15)]
    for wait, (low, high) in zip(waits, bounds):
        assert low - 0.1 <= wait <= high + 0.1, (waits, bounds)

    tweet = twitter_api.add_mention("@acme still waiting on my refund", author_id="11")
    account = _beat_when_due(twitter_account)
    assert account.consecutive_errors == 0 and account.last_error == "" and account.next_poll_at is None
    assert Message.objects.filter(external_id=tweet["id"]).exists()


def test_the_jitter_spreads_accounts_that_failed_together(twitter_api, eager_celery):
    accounts = [ChannelAccountFactory(handle=f"@brand{n}", external_user_id=f"9{n}") for n in range(6)]
    for account in accounts:
        twitter_api.add_fault("GET", _mentions_path(account), status=503, remaining=1)
    poll_due_accounts_task()
    next_polls = set(ChannelAccount.objects.filter(pk__in=[a.pk for a in accounts])
                     .values_list("next_poll_at", flat=True))
    assert len(next_polls) == len(accounts)  # not one thundering retry


def test_a_429_waits_for_its_reset(twitter_api, twitter_account, eager_celery):
    reset = int(time.time()) + 90
    twitter_api.add_fault("GET", _mentions_path(twitter_account), status=429,
                          headers={"x-rate-limit-reset": str(reset)})
    account = _beat_when_due(twitter_account)
    assert account.rate_limited_until == account.next_poll_at
    assert abs(account.next_poll_at.timestamp() - reset) <= 1


def test_refused_credentials_wait_longer(twitter_api, twitter_account, eager_celery):
    twitter_api.add_fault("GET", _mentions_path(twitter_account), status=401, remaining=2)
    account = _beat_when_due(twitter_account)
    assert (account.next_poll_at - account.last_polled_at).total_seconds() >= 300


def test_health_page_shows_an_account_falling_behind(twitter_api, twitter_account, eager_celery, client,
                                                     supervisor, api_client, settings):
    settings.POLL_FALLING_BEHIND_SECONDS = 120
    healthy = ChannelAccountFactory(name="Healthy brand", handle="@healthy", external_user_id="4242")
    twitter_api.add_user("11", "alice")
    twitter_api.add_mention("@acme hello", author_id="11")
    poll_due_accounts_task()  # both poll fine
    twitter_account.refresh_from_db()
    assert twitter_account.last_success_at is not None
    # three minutes later: every poll of the brand account since has failed
    ChannelAccount.objects.filter(pk=twitter_account.pk).update(
        last_success_at=timezone.now() - dt.timedelta(minutes=3))
    twitter_api.add_fault("GET", _mentions_path(twitter_account), status=500, remaining=1)
    account = _beat_when_due(twitter_account)
    assert account.consecutive_errors == 1

    client.force_login(supervisor)
    resp = client.get("/connectors/health/")
    assert resp.status_code == 200
    html = resp.content.decode()
    row = html[html.index(f'data-account="{twitter_account.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "Failing (1 in a row) · falling behind" in row
    assert "falling behind: last successful poll 3" in row and "minutes ago" in row
    healthy_row = html[html.index(f'data-account="{healthy.pk}"'):]
    assert "falling behind" not in healthy_row[:healthy_row.index("</tr>")]
    assert "1 account needs attention" in html

    api_client.force_authenticate(supervisor)
    rows = {r["id"]: r for r in api_client.get("/api/v1/channel-accounts/health/").json()}
    assert rows[twitter_account.pk]["falling_behind"] is True
    assert rows[healthy.pk]["falling_behind"] is False


def test_an_account_polled_fine_but_late_is_falling_behind(twitter_account, client, admin_user, settings):
    """No error at all, but nothing has succeeded for five minutes (the beat stopped, or
    the backoff kept it waiting): shown, not "OK"."""
    settings.POLL_FALLING_BEHIND_SECONDS = 120
    ChannelAccount.objects.filter(pk=twitter_account.pk).update(
        last_polled_at=timezone.now() - dt.timedelta(minutes=4),
        last_success_at=timezone.now() - dt.timedelta(minutes=4))
    client.force_login(admin_user)
    html = client.get("/connectors/health/").content.decode()
    row = html[html.index(f'data-account="{twitter_account.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "Falling behind" in row and "state-behind" in row
