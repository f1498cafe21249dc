"""The whole path: stand-in Twitter holds mentions -> a real Celery worker on Redis
polls and ingests -> the API lists the conversation -> reply through the API ->
the stand-in received exactly one reply tweet, in reply to the right id."""
import time

import pytest
from rest_framework.authtoken.models import Token

from apps.inbox.models import Message
from apps.ingest.tasks import poll_due_accounts_task
from tests.conftest import requires_redis

pytestmark = [requires_redis, pytest.mark.integration]


def wait_for(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate.__doc__ or predicate}")


def test_mention_to_sent_reply(twitter_api, twitter_account, queue, agent, api_client, celery_worker_on_redis):
    twitter_api.add_user("2244994945", "angry_customer", "Angry Customer", followers=5400)
    tweet = twitter_api.add_mention("@acme worst service ever. Order #4411 is lost and I am furious. I want a refund!",
                                    author_id="2244994945")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")

    poll_due_accounts_task.delay()  # what beat sends every POLL_INTERVAL_SECONDS

    def listed():
        """the conversation in the API, routed to the default queue"""
        rows = api_client.get("/api/v1/conversations/").json()["results"]
        return rows[0] if rows and rows[0]["queue"] == queue.pk else None

    conv = wait_for(listed)
    assert conv["identity"]["handle"] == "angry_customer"
    assert conv["identity"]["followers_count"] == 5400
    assert conv["last_sentiment"] is not None and conv["last_sentiment"] < 0

    messages = api_client.get(f"/api/v1/conversations/{conv['id']}/messages/").json()
    assert [m["external_id"] for m in messages] == [tweet["id"]]

    resp = api_client.post(f"/api/v1/conversations/{conv['id']}/reply/",
                           {"text": "@angry_customer So sorry! Please DM us your order number."}, format="json")
    assert resp.status_code == 202, resp.content
    reply_id = resp.json()["id"]

    def sent():
        """the reply marked sent"""
        return Message.objects.filter(pk=reply_id, send_status="sent").first()

    reply = wait_for(sent)
    posted = twitter_api.posted
    assert len(posted) == 1
    assert posted[0]["in_reply_to_tweet_id"] == tweet["id"]
    assert posted[0]["id"] == reply.external_id
    assert posted[0]["text"] == "@angry_customer So sorry! Please DM us your order number."

    # the same mentions polled again are not stored twice
    poll_due_accounts_task.delay()
    time.sleep(1.5)
    assert Message.objects.filter(direction="in").count() == 1
    assert api_client.get(f"/api/v1/conversations/{conv['id']}/").json()["status"] == "open"
