"""The push edge takes a delivery without touching a shared row: each delivery is kept
in a transaction of its own (stored before the 2xx), and the account's health fields
are written at most once every PUSH_HEALTH_WRITE_SECONDS, outside that transaction.
Before issue 19 every delivery updated the account row in its transaction, so one
account's deliveries queued on that row lock (~60/s over HTTP)."""
import base64
import datetime as dt
import hashlib
import hmac
import json
import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from apps.connectors.models import ChannelAccount, PushDelivery
from .hook_accounts import CONSUMER_SECRET, twitter  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _delivery(tweet_id: str) -> bytes:
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 8}}
    return json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()


def _post(client, account, body: bytes):
    sig = "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(f"/hooks/twitter/{account.pk}/", data=body, content_type="application/json",
                       HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=sig)


@pytest.mark.django_db
def test_health_fields_are_written_once_per_window_and_an_error_is_cleared_at_once(client, twitter, settings):
    settings.PUSH_HEALTH_WRITE_SECONDS = 60
    assert _post(client, twitter, _delivery("1001")).status_code == 200
    twitter.refresh_from_db()
    first = twitter.last_push_at
    assert first is not None and twitter.last_push_error == ""

    assert _post(client, twitter, _delivery("1002")).status_code == 200
    twitter.refresh_from_db()
    assert twitter.last_push_at == first  # within the window: no write

    bad = client.post(f"/hooks/twitter/{twitter.pk}/", data=_delivery("1003"), content_type="application/json",
                      HTTP_X_TWITTER_WEBHOOKS_SIGNATURE="sha256=forged")
    assert bad.status_code == 401
    twitter.refresh_from_db()
    assert twitter.last_push_error == "The signature does not match." and twitter.push_refused_count == 1

    # the next good delivery clears the error at once, window or not: the health page must not
    # say "refusing" while deliveries are taken
    assert _post(client, twitter, _delivery("1004")).status_code == 200
    twitter.refresh_from_db()
    assert twitter.last_push_error == "" and twitter.last_push_at > first

    # once the window has passed, the next delivery writes the time again
    old = timezone.now() - dt.timedelta(seconds=61)
    ChannelAccount.objects.filter(pk=twitter.pk).update(last_push_at=old)
    assert _post(client, twitter, _delivery("1005")).status_code == 200
    twitter.refresh_from_db()
    assert twitter.last_push_at > old + dt.timedelta(seconds=60)
    assert PushDelivery.objects.filter(account=twitter).count() == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="holds a row lock from a second PostgreSQL session")
@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_taken_while_another_transaction_holds_the_account_row(client, twitter, settings):
    """Another transaction holds the account row (a poll's state write, a supervisor's save,
    a refusal count): the delivery is stored and answered without waiting for it."""
    settings.PUSH_HEALTH_WRITE_SECONDS = 60
    assert _post(client, twitter, _delivery("2001")).status_code == 200  # health written: fresh now

    dsn = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port", "password")})
    holder.execute("begin")
    holder.execute("select 1 from connectors_channelaccount where id = %s for no key update", [twitter.pk])  # what an UPDATE of it holds
    answered = {}

    def deliver():
        from django.test import Client

        try:
            answered["status"] = _post(Client(), twitter, _delivery("2002")).status_code
        finally:
            connection.close()

    t = threading.Thread(target=deliver)
    t.start()
    t.join(10)
    try:
        assert not t.is_alive(), "the delivery waited on the account row's lock"
        assert answered["status"] == 200
        assert PushDelivery.objects.filter(account=twitter).count() == 2
    finally:
        holder.rollback()
        holder.close()
        t.join(10)
