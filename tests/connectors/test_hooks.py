"""Push delivery at /hooks/<provider>/<account>/: handshakes, signatures, replay
window, refusals (JSON, logged, counted), and the generic webhook channel both ways."""
import base64
import hashlib
import hmac
import json
import logging
import time

import pytest

from apps.connectors.models import ChannelAccount
from apps.connectors.providers.webhook import signed_headers
from apps.connectors.standins.server import StandInServer
from apps.inbox.models import Conversation, Message
from apps.inbox.sending import message_send
from apps.inbox.services import reply_create
from tests.factories import ChannelAccountFactory

from .hook_accounts import CONSUMER_SECRET, twitter, webhook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()  # replay keys from another test's identical delivery


def _tw_sig(body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()


def _tweet_event(for_user="783214", tweet_id="1600000000000000001", user_id="42", reply_to=None):
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
             "user": {"id_str": user_id, "screen_name": "rita", "name": "Rita", "followers_count": 812,
                      "profile_image_url_https": "https://pbs.twimg.com/p/42.jpg", "verified": False},
             "in_reply_to_status_id_str": reply_to, "entities": {"user_mentions": [{"id_str": for_user}]}}
    return {"for_user_id": for_user, "tweet_create_events": [tweet]}


def _post(client, url, payload, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(url, data=body, content_type="application/json", **{f"HTTP_{k.upper().replace('-', '_')}": v
                                                                           for k, v in headers.items()})


# --- Twitter Account Activity -----------------------------------------------------------
def test_twitter_crc_challenge_is_answered_with_the_hmac(client, twitter):
    resp = client.get(f"/hooks/twitter/{twitter.pk}/", {"crc_token": "challenge-abc"})
    expected = base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), b"challenge-abc", hashlib.sha256).digest()).decode()
    assert resp.status_code == 200 and resp.json() == {"response_token": f"sha256={expected}"}
    missing = client.get(f"/hooks/twitter/{twitter.pk}/")
    assert missing.status_code == 400 and missing.json() == {"detail": "crc_token is missing."}


def test_signed_twitter_delivery_is_ingested_once(client, twitter, eager_celery, django_capture_on_commit_callbacks):
    body = json.dumps(_tweet_event()).encode()
    url = f"/hooks/twitter/{twitter.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post(client, url, body, **{"x-twitter-webhooks-signature": _tw_sig(body)})
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    msg = Message.objects.get(channel_account=twitter)
    assert msg.external_id == "1600000000000000001" and msg.text == "@acme my router is dead"
    assert msg.author_identity.handle == "rita" and msg.author_identity.followers_count == 812
    # X re-sends a delivery it thinks failed: still one message
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, url, body, **{"x-twitter-webhooks-signature": _tw_sig(body)})
    assert Message.objects.filter(channel_account=twitter).count() == 1
    twitter.refresh_from_db()
    assert twitter.last_push_at is not None and twitter.push_refused_count == 0


def test_own_tweets_and_dms_from_customers(client, twitter, eager_celery, django_capture_on_commit_callbacks):
    payload = {"for_user_id": "783214",
               "tweet_create_events": [{"id_str": "1", "text": "our own tweet", "user": {"id_str": "783214"}}],
               "direct_message_events": [{"type": "message_create", "id": "1700000000000000009",
                                          "created_timestamp": "1795000000000",
                                          "message_create": {"target": {"recipient_id": "783214"}, "sender_id": "42",
                                                             "message_data": {"text": "my account number is 991"}}}],
               "users": {"42": {"id": "42", "screen_name": "rita", "name": "Rita"}}}
    body = json.dumps(payload).encode()
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post(client, f"/hooks/twitter/{twitter.pk}/", body, **{"x-twitter-webhooks-signature": _tw_sig(body)})
    assert resp.json() == {"accepted": 1}
    dm = Message.objects.get(channel_account=twitter)
    assert dm.kind == "private" and dm.external_id == "1700000000000000009"
    assert not dm.conversation.is_public


@pytest.mark.parametrize("signature,detail", [
    (None, "The delivery carries no signature."),
    ("sha256=AAAA", "The signature does not match."),
])
def test_unsigned_or_badly_signed_delivery_is_refused_logged_and_counted(client, twitter, caplog, signature, detail):
    body = json.dumps(_tweet_event()).encode()
    headers = {"x-twitter-webhooks-signature": signature} if signature else {}
    with caplog.at_level(logging.WARNING, logger="apps.connectors.hooks"):
        resp = _post(client, f"/hooks/twitter/{twitter.pk}/", body, **headers)
    assert resp.status_code == 401 and resp.json() == {"detail": detail}
    assert any("push delivery refused" in r.getMessage() and str(twitter.pk) in r.getMessage() for r in caplog.records)
    twitter.refresh_from_db()
    assert twitter.push_refused_count == 1 and twitter.last_push_error == detail
    assert not Message.objects.exists()


def test_signature_over_a_tampered_body_is_refused(client, twitter):
    body = json.dumps(_tweet_event()).encode()
    sig = _tw_sig(body)
    tampered = body.replace(b"router is dead", b"router is fine")
    resp = _post(client, f"/hooks/twitter/{twitter.pk}/", tampered, **{"x-twitter-webhooks-signature": sig})
    assert resp.status_code == 401


def test_oversized_delivery_is_refused_before_reading(client, twitter, settings):
    settings.HOOKS_MAX_BODY_BYTES = 1000
    body = json.dumps({"for_user_id": "783214", "pad": "x" * 2000}).encode()
    resp = _post(client, f"/hooks/twitter/{twitter.pk}/", body, **{"x-twitter-webhooks-signature": _tw_sig(body)})
    assert resp.status_code == 413 and resp.json() == {"detail": "The delivery is larger than 1000 bytes."}


def test_delivery_for_another_user_is_refused(client, twitter):
    body = json.dumps(_tweet_event(for_user="999")).encode()
    resp = _post(client, f"/hooks/twitter/{twitter.pk}/", body, **{"x-twitter-webhooks-signature": _tw_sig(body)})
    assert resp.status_code == 400 and "another user" in resp.json()["detail"]


def test_unknown_account_wrong_provider_and_polling_networks_get_404(client, twitter):
    assert client.post("/hooks/twitter/999999/", data=b"{}", content_type="application/json").status_code == 404
    resp = client.post(f"/hooks/webhook/{twitter.pk}/", data=b"{}", content_type="application/json")
    assert resp.status_code == 404 and resp.json() == {"detail": "No push channel here."}
    reddit = ChannelAccountFactory(provider="reddit", credentials={})
    assert client.post(f"/hooks/reddit/{reddit.pk}/", data=b"{}", content_type="application/json").status_code == 404


# --- the generic webhook channel ----------------------------------------------------------
MESSAGE = {"messages": [{"id": "chat-1", "text": "Is the blue kettle back in stock?", "thread_id": "session-9",
                         "created_at": "2026-11-23T08:00:00Z",
                         "author": {"id": "visitor-77", "handle": "ana", "name": "Ana Lima"}}]}


def _signed(secret, payload, *, ts=None):
    body = json.dumps(payload).encode()
    return body, signed_headers(secret, body, timestamp=ts)


def test_generic_channel_takes_signed_messages_with_the_token(client, webhook, eager_celery,
                                                             django_capture_on_commit_callbacks):
    body, sig = _signed("sign-456", MESSAGE)
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post(client, f"/hooks/webhook/{webhook.pk}/", body, authorization="Bearer in-token-123", **sig)
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    conv = Conversation.objects.get(channel_account=webhook)
    assert conv.external_thread_id == "session-9" and conv.identity.display_name == "Ana Lima"
    assert conv.messages.get().text == "Is the blue kettle back in stock?"


def test_generic_channel_answers_a_challenge_only_with_the_token(client, webhook):
    url = f"/hooks/webhook/{webhook.pk}/"
    ok = client.get(url, {"challenge": "abc123"}, HTTP_AUTHORIZATION="Bearer in-token-123")
    assert ok.status_code == 200 and ok.json() == {"challenge": "abc123"}
    assert client.get(url, {"challenge": "abc123"}).status_code == 401


@pytest.mark.parametrize("auth,detail", [
    (None, "The delivery carries no token."),
    ("Bearer wrong", "The token does not match."),
])
def test_generic_channel_refuses_missing_or_wrong_token(client, webhook, auth, detail):
    body, sig = _signed("sign-456", MESSAGE)
    headers = {"authorization": auth} if auth else {}
    resp = _post(client, f"/hooks/webhook/{webhook.pk}/", body, **headers, **sig)
    assert resp.status_code == 401 and resp.json() == {"detail": detail}


def test_stale_timestamp_and_replayed_delivery_are_refused(client, webhook, settings):
    settings.HOOKS_REPLAY_WINDOW_SECONDS = 300
    url = f"/hooks/webhook/{webhook.pk}/"
    body, sig = _signed("sign-456", MESSAGE, ts=int(time.time()) - 301)
    resp = _post(client, url, body, authorization="Bearer in-token-123", **sig)
    assert resp.status_code == 401 and "replay window" in resp.json()["detail"]
    body, sig = _signed("sign-456", MESSAGE)
    assert _post(client, url, body, authorization="Bearer in-token-123", **sig).status_code == 200
    again = _post(client, url, body, authorization="Bearer in-token-123", **sig)
    assert again.status_code == 409 and "replay" in again.json()["detail"]


def test_unsigned_delivery_is_refused_when_the_channel_has_a_signing_secret(client, webhook):
    resp = _post(client, f"/hooks/webhook/{webhook.pk}/", MESSAGE, authorization="Bearer in-token-123")
    assert resp.status_code == 401 and resp.json() == {"detail": "The delivery carries no timestamp."}


@pytest.mark.parametrize("payload,detail", [
    (b"not json", "The body is not JSON."),
    ({"messages": [{"id": "x", "author": {"id": "1"}}]}, "messages[0] lacks text."),
    ({"messages": []}, 'Send {"messages": [...]} or one message object.'),
])
def test_malformed_messages_are_refused_with_a_clear_reason(client, webhook, payload, detail):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig = signed_headers("sign-456", body)
    resp = _post(client, f"/hooks/webhook/{webhook.pk}/", body, authorization="Bearer in-token-123", **sig)
    assert resp.status_code == 400 and resp.json() == {"detail": detail}


class ReplyReceiver(StandInServer):
    """The customer's system that receives agent replies."""

    def dispatch(self, method, path, query, body, headers):
        return 200, {"id": f"ext-{len(self.requests)}"}, {}


def test_agent_reply_goes_out_as_a_signed_webhook(webhook, agent, django_capture_on_commit_callbacks, client,
                                                  eager_celery):
    body, sig = _signed("sign-456", MESSAGE)
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, f"/hooks/webhook/{webhook.pk}/", body, authorization="Bearer in-token-123", **sig)
    conv = Conversation.objects.get(channel_account=webhook)
    with ReplyReceiver() as receiver:
        ChannelAccount.objects.filter(pk=webhook.pk).update(api_base_url=receiver.base_url + "/cx/replies")
        conv.channel_account.refresh_from_db()
        msg = reply_create(conversation=conv, agent=agent, text="Yes, back since Monday!")
        msg = message_send(message_id=msg.pk)
        [req] = receiver.requests
    assert msg.send_status == "sent" and msg.external_id == "ext-1"
    assert req["path"] == "/cx/replies"
    payload = json.loads(req["body"])
    assert payload["text"] == "Yes, back since Monday!" and payload["in_reply_to"] == "chat-1"
    assert payload["recipient"] == "visitor-77"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    ts = headers["x-cxinbox-timestamp"]
    expected = "sha256=" + hmac.new(b"sign-456", f"{ts}.".encode() + req["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-cxinbox-signature"], expected)
    assert abs(int(ts) - time.time()) < 60
    assert headers["idempotency-key"] == f"cxinbox-{webhook.pk}-{msg.pk}"


def test_push_only_channel_is_not_polled(webhook, twitter, eager_celery, twitter_api):
    from apps.ingest.tasks import poll_due_accounts_task

    poll_due_accounts_task()
    webhook.refresh_from_db()
    twitter.refresh_from_db()
    assert webhook.last_polled_at is None and twitter.last_polled_at is not None
