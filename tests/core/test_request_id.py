"""The request id (apps/core/request_id.py): echoed when sane, replaced when not, on every
log line of the request, carried by the Celery tasks it queues, and kept with a push
delivery, so a mention is followed from the webhook through ingest and routing: in a
real Celery worker, whose JSON lines carry the webhook's id."""
import json
import time
import uuid

import pytest

from apps.connectors.models import PushDelivery
from apps.connectors.providers.base import InboundMention, mention_to_dict
from apps.core import request_id as rid
from apps.inbox.models import Conversation, Message
from apps.ingest.push import push_delivery_ingest
from tests.conftest import requires_redis
from tests.factories import ChannelAccountFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - fixture


def _is_new_id(value: str) -> bool:
    return len(value) == 32 and uuid.UUID(hex=value).hex == value


# --- the header -------------------------------------------------------------------------

@pytest.mark.parametrize("incoming", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "req.42_x", "a" * 64])
def test_a_sane_incoming_id_is_echoed(client, db, incoming):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize("hostile", [
    "a" * 65,  # too long
    "abc\nInjected: yes",  # a new header or a forged log line
    "abc\r\n",
    '"quoted"',
    "it's",
    "with space",
    "semi;colon",
    "<script>",
    "",
])
def test_a_hostile_incoming_id_is_replaced(client, db, hostile):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID=hostile)
    assert response["X-Request-ID"] != hostile
    assert _is_new_id(response["X-Request-ID"])


def test_without_one_each_request_gets_its_own(client, db):
    first, second = client.get("/no-such-page/")["X-Request-ID"], client.get("/no-such-page/")["X-Request-ID"]
    assert _is_new_id(first) and _is_new_id(second) and first != second
    assert rid.request_id_current() == ""  # nothing left behind in the test's context


def test_the_asgi_stack_answers_with_it_too(db):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    response = async_to_sync(AsyncClient().get)("/no-such-page/", headers={"X-Request-ID": "asgi-req-1"})
    assert response["X-Request-ID"] == "asgi-req-1"


def test_the_request_s_log_lines_carry_it(client, db, json_log):
    """A refused webhook logs a warning while the request is served: with its id."""
    response = client.post("/hooks/webhook/999999/", data=b"{}", content_type="application/json",
                           HTTP_X_REQUEST_ID="refused-req-1")
    assert response.status_code == 404
    [line] = [line for line in json_log.lines() if line["message"].startswith("push delivery refused")]
    assert line["request_id"] == "refused-req-1"
    assert line["level"] == "WARNING" and line["logger"] == "apps.connectors.hooks"


# --- Celery -------------------------------------------------------------------------------

def test_a_task_carries_the_id_of_what_queued_it_and_runs_under_it():
    from cxinbox.celery import app

    class Request:
        id, is_eager = "task-1", False

    class Task:
        name, request = "ingest.push_delivery", Request()

    headers = {}
    token = rid._request_id.set("webhook-req-9")
    try:
        rid.task_headers_add(headers)
    finally:
        rid._request_id.reset(token)
    assert headers == {rid.TASK_HEADER: "webhook-req-9"}
    assert app  # the signals are connected where the app is made (cxinbox/celery.py)

    setattr(Task.request, rid.TASK_HEADER, "webhook-req-9")
    rid.task_started(Task)
    try:
        assert rid.request_id_current() == "webhook-req-9"
        assert rid.task_current() == ("ingest.push_delivery", "task-1")
    finally:
        rid.task_finished(Task)
    assert rid.request_id_current() == "" and rid.task_current() is None
    # queued by nothing with an id (beat), or with a forged one: an id of its own
    setattr(Task.request, rid.TASK_HEADER, "bad\nid")
    rid.task_started(Task)
    try:
        assert _is_new_id(rid.request_id_current())
    finally:
        rid.task_finished(Task)


def _mention(external_id: str, author: str = "u1") -> dict:
    return mention_to_dict(InboundMention(external_id=external_id, text="my order never came",
                                          created_at=time_now(), author_external_id=author, author_handle=author))


def time_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.django_db(transaction=True)
def test_an_ingest_batch_names_every_request_it_took(json_log):
    """One ingest task takes the pending deliveries of many webhook requests: its line and
    routing's name each request id with the network ids and message ids it brought."""
    account = ChannelAccountFactory(provider="webhook", credentials={})
    first = PushDelivery.objects.create(account=account, mentions=[_mention("n-1", "a1")], request_id="req-A")
    PushDelivery.objects.create(account=account, mentions=[_mention("n-2", "a2"), _mention("n-3", "a3")],
                                request_id="req-B")
    push_delivery_ingest(delivery_id=first.pk)
    ids = dict(Message.objects.filter(channel_account=account).values_list("external_id", "pk"))
    assert len(ids) == 3
    lines = json_log.lines()
    [ingested] = [line for line in lines if line["message"].startswith("ingested 3 mentions")]
    assert ingested["mentions"] == {"req-A": {"n-1": ids["n-1"]}, "req-B": {"n-2": ids["n-2"], "n-3": ids["n-3"]}}
    [routed] = [line for line in lines if line["message"].startswith("routed 3 messages")]
    assert {k: sorted(v) for k, v in routed["messages"].items()} == {
        "req-A": [ids["n-1"]], "req-B": sorted([ids["n-2"], ids["n-3"]])}
    conversations = {c[0] for c in routed["conversations"]}
    assert conversations == set(Conversation.objects.filter(channel_account=account).values_list("pk", flat=True))
    assert ingested["timestamp"] <= routed["timestamp"]  # ingest's line first, then routing's


def _tweet_delivery(tweet_id: str) -> bytes:
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 812},
             "in_reply_to_status_id_str": None, "entities": {"user_mentions": [{"id_str": "783214"}]}}
    return json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()


def _wait_for_line(json_log, starts: str, request_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [line for line in json_log.lines()
                 if line["message"].startswith(starts) and line["request_id"] == request_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {starts!r} line with request id {request_id}:\n{json_log.raw()[-5000:]}")


@requires_redis
@pytest.mark.integration
def test_a_mention_is_followed_from_the_webhook_to_the_reply(celery_worker_on_redis, client, api_client,  # noqa: F811
                                                             twitter_api, queue, admin_user, json_log):
    """A tweet pushed to the webhook with the sender's X-Request-ID: the real worker's JSON
    lines for its ingest and routing carry that id (the task's header) and name the tweet;
    the agent's reply through the API is sent by the worker under the agent's request id."""
    import base64
    import hashlib
    import hmac

    account = ChannelAccountFactory(external_user_id="783214", credentials={
        "bearer_token": "b", "consumer_key": "ck", "consumer_secret": "cs", "access_token": "at",
        "access_token_secret": "ats"})
    twitter_api.add_user("42", "rita", "Rita", followers=812)
    tweet_id = twitter_api.add_mention("@acme my router is dead", author_id="42")["id"]  # there to be answered
    body = _tweet_delivery(tweet_id)
    signature = "sha256=" + base64.b64encode(hmac.new(b"cs", body, hashlib.sha256).digest()).decode()
    response = client.post(f"/hooks/twitter/{account.pk}/", data=body, content_type="application/json",
                           HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=signature, HTTP_X_REQUEST_ID="hook-req.7f3a")
    assert response.status_code == 200 and response["X-Request-ID"] == "hook-req.7f3a"
    assert PushDelivery.objects.get(account=account).request_id == "hook-req.7f3a"

    routed = _wait_for_line(json_log, "routed", "hook-req.7f3a")
    message = Message.objects.get(channel_account=account, external_id=tweet_id)
    lines = [line for line in json_log.lines() if line["request_id"] == "hook-req.7f3a"]
    [accepted] = [line for line in lines if line["message"].startswith("push delivery accepted")]
    assert accepted["network_ids"] == [tweet_id] and "task_name" not in accepted
    [ingested] = [line for line in lines if line["message"].startswith("ingested")]
    assert ingested["task_name"] == "ingest.push_delivery" and ingested["task_id"]
    assert ingested["mentions"] == {"hook-req.7f3a": {tweet_id: message.pk}}
    assert routed["task_name"] == "ingest.push_delivery"
    assert routed["messages"] == {"hook-req.7f3a": [message.pk]}
    assert routed["conversations"] == [[message.conversation_id, queue.pk, None, "new"]]

    api_client.force_authenticate(admin_user)
    reply = api_client.post(f"/api/v1/conversations/{message.conversation_id}/reply/",
                            {"text": "@rita So sorry! Please DM us."}, format="json", HTTP_X_REQUEST_ID="agent-req-1")
    assert reply.status_code == 202, reply.content
    queued = _wait_for_line(json_log, f"reply {reply.json()['id']} queued", "agent-req-1")
    assert queued["conversation"] == message.conversation_id and "task_name" not in queued
    sent = _wait_for_line(json_log, f"reply {reply.json()['id']} sent", "agent-req-1")
    assert sent["task_name"] == "outbound.send_message"
    assert sent["in_reply_to"] == tweet_id and sent["network_id"] == twitter_api.posted[0]["id"]
    # each one JSON object on a line of its own, as the production handler writes them
    assert all(json.loads(raw)["timestamp"].endswith("Z") for raw in json_log.raw().splitlines())
