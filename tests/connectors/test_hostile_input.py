"""Hostile input at the edge (issue 18; docs/connectors.md): what a stranger can put in
a mention (absurd times, NUL and lone surrogates, malformed shapes, deep JSON,
javascript: URLs, huge texts) never bricks an inbox, never answers 500, and what is
stored is sane. From the outside: deliveries over HTTP to /hooks/, polls against the
stand-in networks, then the inbox pages and the API as a user would open them."""
import base64
import datetime as dt
import hashlib
import hmac
import json
import re

import pytest
from django.utils import timezone

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Conversation, Message
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

from .hook_accounts import CONSUMER_SECRET, twitter, webhook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
ABSURD_ISO = ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2999-01-01T00:00:00Z",
              "1970-01-01T00:00:00Z"]


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _post_webhook(client, account, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"HTTP_AUTHORIZATION": "Bearer in-token-123"}
    headers.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", body).items()})
    return client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json", **headers)


def _post_twitter(client, account, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig = "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(f"/hooks/twitter/{account.pk}/", data=body, content_type="application/json",
                       HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=sig)


def _message(i, **over):
    msg = {"id": f"m-{i}", "text": f"hello {i}", "author": {"id": f"u-{i}", "handle": f"cust{i}", "name": "Cust"},
           "created_at": "2026-11-23T08:00:00Z"}
    msg.update(over)
    return msg


def _tweet(tweet_id="1600000000000000001", **over):
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 812}}
    tweet.update(over)
    return tweet


def _sane(when: dt.datetime) -> bool:
    now = timezone.now()
    return dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc) <= when <= now + dt.timedelta(days=1)


def _inbox_answers(client, api_client, admin_user, account):
    """Every list, thread and API read that touches the account's messages answers 200."""
    client.force_login(admin_user)
    api_client.force_authenticate(admin_user)
    assert client.get("/inbox/").status_code == 200
    assert client.get("/inbox/?status=all").status_code == 200
    assert api_client.get("/api/v1/conversations/").status_code == 200
    pages = []
    for conv in Conversation.objects.filter(channel_account=account):
        page = client.get(f"/inbox/c/{conv.pk}/")
        assert page.status_code == 200
        assert api_client.get(f"/api/v1/conversations/{conv.pk}/").status_code == 200
        assert api_client.get(f"/api/v1/conversations/{conv.pk}/messages/").status_code == 200
        pages.append(page.content.decode())
    return pages


def _assert_all_sane(account):
    msgs = list(Message.objects.filter(channel_account=account))
    assert msgs
    for m in msgs:  # read back through psycopg: year 10000 / BC could not even be read
        assert _sane(m.sent_at), (m.external_id, m.sent_at)
    for c in Conversation.objects.filter(channel_account=account):
        assert c.last_message_at is None or _sane(c.last_message_at)
        assert c.cycle_started_at is None or _sane(c.cycle_started_at)


# --- 1. times out of range, every provider ------------------------------------------------
def test_webhook_absurd_times_keep_the_arrival_time(client, api_client, admin_user, webhook, eager_celery,
                                                    django_capture_on_commit_callbacks):
    payload = {"messages": [_message(i, created_at=t) for i, t in enumerate(ABSURD_ISO)]
               + [_message(9, created_at="2026-11-23T08:00:00Z")]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_webhook(client, webhook, payload)
    assert resp.status_code == 200 and resp.json() == {"accepted": len(ABSURD_ISO) + 1}
    _assert_all_sane(webhook)
    good = Message.objects.get(channel_account=webhook, external_id="m-9")
    assert good.sent_at == dt.datetime(2026, 11, 23, 8, tzinfo=dt.timezone.utc)  # a sane claim is believed
    _inbox_answers(client, api_client, admin_user, webhook)


def test_twitter_push_absurd_times_keep_the_arrival_time(client, api_client, admin_user, twitter, eager_celery,
                                                         django_capture_on_commit_callbacks):
    payload = {"for_user_id": "783214",
               "tweet_create_events": [_tweet("1600000000000000001", created_at="Fri Dec 31 23:59:59 -1200 9999"),
                                       _tweet("1600000000000000002", created_at="Mon Jan 01 00:00:00 +1400 0001")],
               "direct_message_events": [{"type": "message_create", "id": "1700000000000000009",
                                          "created_timestamp": "1" * 30,
                                          "message_create": {"sender_id": "43",
                                                             "message_data": {"text": "dm"}}}]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_twitter(client, twitter, payload)
    assert resp.status_code == 200 and resp.json() == {"accepted": 3}
    _assert_all_sane(twitter)
    _inbox_answers(client, api_client, admin_user, twitter)


def test_twitter_poll_absurd_time(client, api_client, admin_user, twitter_api, eager_celery,
                                  django_capture_on_commit_callbacks):
    account = ChannelAccountFactory()
    twitter_api.add_user("42", "rita")
    tweet = twitter_api.add_mention("@acme far future", author_id="42")
    tweet["created_at"] = "9999-12-31T23:59:59.000Z"
    with django_capture_on_commit_callbacks(execute=True):
        account_poll(account=account)
    _assert_all_sane(account)
    _inbox_answers(client, api_client, admin_user, account)


def test_mastodon_poll_absurd_time(client, api_client, admin_user, settings, eager_celery,
                                   django_capture_on_commit_callbacks):
    from apps.connectors.standins.mastodon import MastodonStandIn

    with MastodonStandIn() as mastodon:
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        account = ChannelAccountFactory(provider="mastodon", handle="@acme@mastodon.example",
                                        external_user_id=mastodon.brand["id"], api_base_url=mastodon.base_url,
                                        credentials={"access_token": "mastodon-token"})
        alice = mastodon.add_account("alice", "Alice", followers=3)
        alice["followers_count"] = "abc"  # junk counts do not fail the poll
        alice["url"] = alice["avatar"] = "javascript:alert(1)"
        for i, when in enumerate(ABSURD_ISO):
            mastodon.add_status(f"status {i}", author=alice)["created_at"] = when
        with django_capture_on_commit_callbacks(execute=True):
            account_poll(account=account)
    assert Message.objects.filter(channel_account=account).count() == len(ABSURD_ISO)
    _assert_all_sane(account)
    assert not Message.objects.filter(channel_account=account, author_identity__profile_url__contains="script").exists()
    _inbox_answers(client, api_client, admin_user, account)


def test_bluesky_poll_absurd_time(client, api_client, admin_user, settings, eager_celery,
                                  django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from apps.connectors.standins.bluesky import BlueskyStandIn

    with BlueskyStandIn() as bluesky:
        settings.BLUESKY_API_BASE_URL = bluesky.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        cache.clear()
        account = ChannelAccountFactory(provider="bluesky", handle="@acme.bsky.social",
                                        external_user_id=bluesky.brand["did"],
                                        credentials={"identifier": "acme.bsky.social", "app_password": "app-pass-1234"})
        bob = bluesky.add_actor("bob.bsky.social", "Bob")
        for i, when in enumerate(ABSURD_ISO[:2]):
            bluesky.add_post(f"@acme post {i}", author=bob)["record"]["createdAt"] = when
        with django_capture_on_commit_callbacks(execute=True):
            account_poll(account=account)
    assert Message.objects.filter(channel_account=account).count() == 2
    _assert_all_sane(account)
    _inbox_answers(client, api_client, admin_user, account)


def test_reddit_poll_absurd_time(client, api_client, admin_user, settings, eager_celery,
                                 django_capture_on_commit_callbacks):
    from apps.connectors.standins.reddit import RedditStandIn

    with RedditStandIn() as reddit:
        settings.REDDIT_OAUTH_URL = settings.REDDIT_URL = reddit.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        account = ChannelAccountFactory(provider="reddit", handle="u/acme_support", external_user_id="",
                                        credentials={"client_id": "cid", "client_secret": "csecret",
                                                     "username": "acme_support", "password": "hunter2"})
        reddit.add_inbox_comment("u/acme_support far future", author="carol", created_utc=1e29)
        reddit.add_inbox_comment("u/acme_support normal", author="dave")
        with django_capture_on_commit_callbacks(execute=True):
            result = account_poll(account=account)
    assert Message.objects.filter(channel_account=account).count() == 2
    _assert_all_sane(account)
    account.refresh_from_db()
    # the far-future item is not the cursor: later mentions are still fetched
    assert account.poll_cursor["mentions"]["since"] < 1e12, result
    _inbox_answers(client, api_client, admin_user, account)


EMAIL = """From: Maria <maria@example.org>
To: support@acme.example
Subject: {subject}
Date: {date}
Message-ID: <{mid}@mail.example.org>
Content-Type: text/plain; charset={charset}

Hello, nul here:\x00 end.
"""


def test_email_absurd_dates_and_unknown_charset(client, api_client, admin_user, settings, eager_celery,
                                                django_capture_on_commit_callbacks):
    from apps.connectors.standins.imap import ImapStandIn

    with ImapStandIn() as imap:
        settings.PROVIDER_TIMEOUT_SECONDS = 3.0
        account = ChannelAccountFactory(
            provider="email", handle="support@acme.example", external_user_id="",
            credentials={"username": "support@acme.example", "password": "imap-pass", "imap_host": "127.0.0.1",
                         "imap_port": imap.port, "imap_ssl": False})
        imap.deliver(EMAIL.format(subject="future", date="Fri, 31 Dec 9999 23:59:59 -1200", mid="a", charset="utf-8"))
        imap.deliver(EMAIL.format(subject="past", date="Mon, 1 Jan 0001 00:00:00 +1400", mid="b", charset="utf-8"))
        imap.deliver(EMAIL.format(subject="charset", date="Mon, 23 Nov 2026 08:00:00 +0000", mid="c",
                                  charset="x-no-such-charset"))
        with django_capture_on_commit_callbacks(execute=True):
            account_poll(account=account)
    assert Message.objects.filter(channel_account=account).count() == 3
    _assert_all_sane(account)
    assert all("\x00" not in m.text for m in Message.objects.filter(channel_account=account))
    _inbox_answers(client, api_client, admin_user, account)


def test_pending_delivery_stored_before_the_fix_is_clamped_on_ingest(webhook, eager_celery,
                                                                    django_capture_on_commit_callbacks):
    """A delivery kept by an older release with year 9999 is stored with a sane time, not bricked."""
    from apps.ingest.tasks import push_delivery_ingest_task

    delivery = PushDelivery.objects.create(account=webhook, mentions=[{
        "external_id": "old-1", "text": "hi", "created_at": "9999-12-31T23:59:59-12:00", "author_external_id": "u1",
        "author_handle": "u1"}])
    with django_capture_on_commit_callbacks(execute=True):
        push_delivery_ingest_task(delivery.pk)
    _assert_all_sane(webhook)


# --- 2. NUL and lone surrogates in a pushed payload -------------------------------------
def test_nul_and_lone_surrogate_become_replacement_characters(client, api_client, admin_user, webhook,
                                                              eager_celery, django_capture_on_commit_callbacks):
    # json.dumps writes "\\u0000" and "\\ud800" escapes: exactly what a network sends
    payload = {"messages": [_message(1, text="a\u0000b \ud800 c", author={"id": "u-1", "handle": "h\u0000x",
                                                                        "name": "Na\ud800me"}),
                            _message(2, text="a good one")]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_webhook(client, webhook, payload)
    assert resp.status_code == 200 and resp.json() == {"accepted": 2}
    delivery = PushDelivery.objects.get(account=webhook)
    assert delivery.status == "done" and "\x00" not in json.dumps(delivery.mentions)
    bad = Message.objects.get(channel_account=webhook, external_id="m-1")
    assert bad.text == "a\ufffdb \ufffd c"
    assert bad.author_identity.handle == "h\ufffdx" and bad.author_identity.display_name == "Na\ufffdme"
    assert Message.objects.get(channel_account=webhook, external_id="m-2").text == "a good one"
    pages = _inbox_answers(client, api_client, admin_user, webhook)
    assert any("a\ufffdb" in p for p in pages)


def test_nul_in_a_twitter_push(client, twitter, eager_celery, django_capture_on_commit_callbacks):
    payload = {"for_user_id": "783214", "tweet_create_events": [
        _tweet(text="bad \u0000 \udfff", user={"id_str": "42", "screen_name": "rita", "name": "R\u0000ita"}),
        _tweet("1600000000000000002", text="good")]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_twitter(client, twitter, payload)
    assert resp.status_code == 200 and resp.json() == {"accepted": 2}
    assert Message.objects.get(external_id="1600000000000000001").text == "bad \ufffd \ufffd"
    assert Message.objects.get(external_id="1600000000000000002").text == "good"


# --- 3. malformed but signed deliveries: 400 with a reason, never 500 -------------------------
HOSTILE_TWITTER = [
    {"for_user_id": "783214", "tweet_create_events": {"id_str": "1"}},
    {"for_user_id": "783214", "tweet_create_events": ["a", "b"]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(user="rita")]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(user={"id_str": "42", "followers_count": "abc"})]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(extended_tweet="full text")]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(text={"a": 1})]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(id_str=[1])]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(id_str="12abc")]},
    {"for_user_id": "783214", "tweet_create_events": [_tweet(quoted_status="x")]},
    {"for_user_id": "783214", "direct_message_events": "x"},
    {"for_user_id": "783214", "direct_message_events": [{"type": "message_create", "id": "5",
                                                          "message_create": "x"}]},
    {"for_user_id": "783214", "users": [], "direct_message_events": []},
    {"for_user_id": ["783214"]},
    {"for_user_id": {"a": 1}},
    [], "x", 7, None,
]


@pytest.mark.parametrize("payload", HOSTILE_TWITTER)
def test_malformed_twitter_push_is_a_400_with_a_reason(client, twitter, payload):
    resp = _post_twitter(client, twitter, payload)
    assert resp.status_code == 400, resp.content
    assert resp.json()["detail"]
    assert not PushDelivery.objects.exists() and not Message.objects.exists()


def test_twitter_ids_sent_as_numbers_are_stored(client, twitter, eager_celery, django_capture_on_commit_callbacks):
    payload = {"for_user_id": 783214, "tweet_create_events": [
        _tweet(id_str=1600000000000000005, created_timestamp="1" * 30,
               user={"id_str": 42, "screen_name": "rita", "followers_count": "812"})]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_twitter(client, twitter, payload)
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    msg = Message.objects.get(channel_account=twitter)
    assert msg.external_id == "1600000000000000005" and msg.author_identity.followers_count == 812


HOSTILE_WEBHOOK = [
    {"messages": [_message(1, text={"a": 1})]},
    {"messages": [_message(1, text=["a"])]},
    {"messages": [_message(1, author="bob")]},
    {"messages": [_message(1, author={"id": {"x": 1}})]},
    {"messages": [_message(1, created_at=12345)]},
    {"messages": [_message(1, created_at="next tuesday")]},
    {"messages": [_message(1, url={"href": "x"})]},
    {"messages": [_message(1, thread_id=["t"])]},
    {"messages": [_message(1, id={"a": 1})]},
    {"messages": {"a": 1}},
    {"messages": "x"},
    {"messages": []},
    {"messages": [1, 2]},
    [], "x", 7, None,
]


@pytest.mark.parametrize("payload", HOSTILE_WEBHOOK)
def test_malformed_webhook_delivery_is_a_400_with_a_reason(client, webhook, payload):
    resp = _post_webhook(client, webhook, payload)
    assert resp.status_code == 400, resp.content
    assert resp.json()["detail"]
    assert not PushDelivery.objects.exists()


def test_generated_hostile_shapes_never_answer_500(client, twitter, webhook):
    """Random JSON in the places the providers read: every answer is 200 or 400."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    anything = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "id_str", "text", "user", "author", "created_at", "created_timestamp",
                         "followers_count", "extended_tweet", "full_text", "message_create", "sender_id",
                         "message_data", "name", "screen_name", "handle", "url", "profile_url"]) | st.text(max_size=5),
        kids, max_size=4), max_leaves=12)

    @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(tweet=anything, dm=anything, msg=anything)
    def run(tweet, dm, msg):
        from django.core.cache import cache

        cache.clear()
        for resp in (
            _post_twitter(client, twitter, {"for_user_id": "783214", "tweet_create_events": [tweet],
                                            "direct_message_events": [dm], "users": {"43": tweet}}),
            _post_twitter(client, twitter, {"for_user_id": "783214", "tweet_create_events": [_tweet(**(
                tweet if isinstance(tweet, dict) else {"user": tweet}))]}),
            _post_webhook(client, webhook, {"messages": [msg]}),
            _post_webhook(client, webhook, {"messages": [_message(1, **(msg if isinstance(msg, dict)
                                                                       else {"author": msg}))]}),
        ):
            assert resp.status_code in (200, 400), (resp.status_code, resp.content[:300])

    run()


def test_a_refusal_quoting_a_nul_is_stored_and_answered(client, webhook):
    """The reason names the bad value; it is kept on the account (the health page), storable."""
    resp = _post_webhook(client, webhook, {"messages": [_message(1, created_at="\u0000\ud800 not a time")]})
    assert resp.status_code == 400 and "not a time" in resp.json()["detail"]
    webhook.refresh_from_db()
    assert webhook.push_refused_count == 1 and "not a time" in webhook.last_push_error


@pytest.mark.parametrize("body", [b'{"messages": [{"id": "1", "text": "x", "author": {"id": NaN}}]}',
                                  b'{"messages": [{"id": "1", "text": "x", "author": {"id": "1"}, "n": Infinity}]}',
                                  b'{"messages": [{"id": "1", "text": "x", "author": {"id": "1"}, "n": 1e999}]}'])
def test_nan_and_infinity_are_not_json(client, webhook, body):
    """Python's json reads them, PostgreSQL's json refuses them when the delivery is stored (a 500)."""
    resp = _post_webhook(client, webhook, body)
    assert resp.status_code == 400 and resp.json() == {"detail": "The body is not JSON."}


def test_a_malformed_polled_item_is_skipped_not_a_poison_poll(settings, eager_celery,
                                                              django_capture_on_commit_callbacks):
    """One status of a shape normalize() cannot read (or holding NaN) used to fail the poll, and every
    later poll, on the same page: the others are stored and the cursor moves on."""
    from apps.connectors.standins.mastodon import MastodonStandIn

    with MastodonStandIn() as mastodon:
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        account = ChannelAccountFactory(provider="mastodon", handle="@acme@mastodon.example",
                                        external_user_id=mastodon.brand["id"], api_base_url=mastodon.base_url,
                                        credentials={"access_token": "mastodon-token"})
        alice = mastodon.add_account("alice", "Alice")
        mastodon.add_status("broken", author=alice)["content"] = {"html": "x"}
        mastodon.add_status("with nan", author=alice)["poll"] = {"score": float("nan")}
        mastodon.add_status("fine", author=alice)
        with django_capture_on_commit_callbacks(execute=True):
            account_poll(account=account)
    account.refresh_from_db()
    assert account.consecutive_errors == 0 and account.poll_cursor.get("since_id")
    texts = sorted(Message.objects.filter(channel_account=account).values_list("text", flat=True))
    assert texts == ["@acme fine", "@acme with nan"]


# --- 4. deeply nested JSON ----------------------------------------------------------------
@pytest.mark.parametrize("body", [b"[" * 3000, b"[" * 3000 + b"]" * 3000, b'{"messages": ' + b"[" * 200 + b"]" * 200 + b"}"])
def test_deeply_nested_body_is_a_400(client, twitter, webhook, body):
    for resp in (_post_twitter(client, twitter, body), _post_webhook(client, webhook, body)):
        assert resp.status_code == 400, resp.content
        assert resp.json()["detail"]
    assert not PushDelivery.objects.exists()


# --- 5. javascript: URLs ----------------------------------------------------------------
BAD_URLS = ["javascript:alert(document.cookie)", " JavaScript:alert(1)", "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "//evil.example/x"]


def test_javascript_urls_never_reach_href_or_src(client, api_client, admin_user, webhook, eager_celery,
                                                 django_capture_on_commit_callbacks):
    payload = {"messages": [_message(i, url=bad, author={"id": f"u-{i}", "handle": f"c{i}", "profile_url": bad,
                                                           "avatar_url": bad}) for i, bad in enumerate(BAD_URLS)]
               + [_message(99, url="https://shop.example/m/99",
                           author={"id": "u-99", "handle": "ok", "profile_url": "https://shop.example/u/ok",
                                   "avatar_url": "https://cdn.example/ok.png"})]}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_webhook(client, webhook, payload)
    assert resp.status_code == 200
    for m in Message.objects.filter(channel_account=webhook).exclude(external_id="m-99").select_related(
            "author_identity"):
        assert m.url == "" and m.author_identity.profile_url == "" and m.author_identity.avatar_url == ""
    good = Message.objects.select_related("author_identity").get(external_id="m-99")
    assert good.url == "https://shop.example/m/99" and good.author_identity.avatar_url == "https://cdn.example/ok.png"
    pages = _inbox_answers(client, api_client, admin_user, webhook)
    attrs = [v for p in pages for v in re.findall(r'(?:href|src)\s*=\s*"([^"]*)"', p)]
    assert attrs and not [a for a in attrs if re.sub(r"\s", "", a).lower().startswith(("javascript:", "data:",
                                                                                         "vbscript:"))]
    assert any(p.count("https://shop.example/u/ok") for p in pages)


def test_javascript_urls_stored_earlier_are_not_rendered(client, admin_user, webhook, eager_celery,
                                                         django_capture_on_commit_callbacks):
    """Rows written before the edge dropped such URLs: the templates guard too."""
    with django_capture_on_commit_callbacks(execute=True):
        _post_webhook(client, webhook, {"messages": [_message(1)]})
    msg = Message.objects.select_related("author_identity").get(channel_account=webhook)
    Message.objects.filter(pk=msg.pk).update(url="javascript:alert(1)")
    type(msg.author_identity).objects.filter(pk=msg.author_identity_id).update(
        profile_url="javascript:alert(2)", avatar_url="javascript:alert(3)")
    client.force_login(admin_user)
    page = client.get(f"/inbox/c/{msg.conversation_id}/").content.decode()
    assert "javascript:" not in page


# --- 6. huge texts are capped with a visible marker -------------------------------------------
def test_huge_message_is_capped_with_a_marker(client, api_client, admin_user, webhook, settings, eager_celery,
                                              django_capture_on_commit_callbacks):
    settings.HOOKS_MAX_BODY_BYTES = 2 * 1024 * 1024
    huge = "word " * 180_000  # 900 KB
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_webhook(client, webhook, {"messages": [_message(1, text=huge)]})
    assert resp.status_code == 200
    msg = Message.objects.get(channel_account=webhook)
    assert len(msg.text) < settings.INGEST_MAX_TEXT_CHARS + 200
    assert msg.text.startswith("word word") and "truncated" in msg.text
    assert len(json.dumps(msg.raw)) < 3 * settings.INGEST_MAX_TEXT_CHARS  # the raw copy is capped too
    pages = _inbox_answers(client, api_client, admin_user, webhook)
    assert any("truncated" in p for p in pages)


# --- the other direction: the webhook channel's reply receiver is a stranger's server too ------
def test_a_hostile_reply_answer_is_stored_safely(client, webhook, agent, eager_celery,
                                                 django_capture_on_commit_callbacks):
    from apps.connectors.models import ChannelAccount
    from apps.connectors.standins.server import StandInServer
    from apps.inbox.sending import message_send
    from apps.inbox.services import reply_create

    class HostileReceiver(StandInServer):
        def dispatch(self, method, path, query, body, headers):
            return 200, {"id": "r\u0000-1", "url": "javascript:alert(1)"}, {}

    with django_capture_on_commit_callbacks(execute=True):
        _post_webhook(client, webhook, {"messages": [_message(1)]})
    conv = Conversation.objects.get(channel_account=webhook)
    with HostileReceiver() as receiver:
        ChannelAccount.objects.filter(pk=webhook.pk).update(api_base_url=receiver.base_url + "/replies")
        conv.channel_account.refresh_from_db()
        msg = message_send(message_id=reply_create(conversation=conv, agent=agent, text="on it").pk)
    assert msg.send_status == "sent" and msg.external_id == "r\ufffd-1" and msg.url == ""
