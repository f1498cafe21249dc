"""Idempotency-Key on the API's writes (issue 18, "One reply, one post"): a client
that retries a lost 202, or sends twice at once, gets one reply and one post."""
import datetime as dt
import threading

import pytest
import requests
from django.db import connection, connections
from django.utils import timezone

from apps.accounts.services import api_token_create
from apps.core.idempotency import idempotency_keys_purge
from apps.core.models import IdempotencyKey
from apps.inbox.models import Message, Note
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="issue 18 is about PostgreSQL")


@pytest.fixture
def thread(twitter_api, twitter_account, queue):
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme my order is late", author_id="11")
    conv = ConversationFactory(queue=queue, channel_account=twitter_account, identity__external_id="11",
                               identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    return conv, tweet


def _live_thread(account, tweet):
    team = TeamFactory()
    conv = ConversationFactory(queue=QueueFactory(team=team, is_default=True), channel_account=account,
                               identity__external_id="11", identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    agent = UserFactory(role="agent")
    team.members.add(agent)
    return conv, agent


def _token_client(user):
    from rest_framework.test import APIClient

    _, key = api_token_create(user=user, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _reply(client, conv, text, key=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/conversations/{conv.pk}/reply/", {"text": text}, format="json",
                       **headers, **extra)


@pytest.mark.django_db
def test_retry_with_the_same_key_replays_the_first_reply(thread, agent, twitter_api, eager_celery,
                                                         django_capture_on_commit_callbacks):
    conv, tweet = thread
    client = _token_client(agent)
    with django_capture_on_commit_callbacks(execute=True):
        first = _reply(client, conv, "@alice sorry! DM us?", key="retry-1")
    assert first.status_code == 202 and "Idempotent-Replayed" not in first
    with django_capture_on_commit_callbacks(execute=True):
        again = _reply(client, conv, "@alice sorry! DM us?", key="retry-1")
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1
    assert len(twitter_api.replies_to(tweet["id"])) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422(thread, agent, eager_celery):
    conv, _ = thread
    client = _token_client(agent)
    assert _reply(client, conv, "first text", key="k-422").status_code == 202
    resp = _reply(client, conv, "another text", key="k-422")
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.json()["detail"]
    # another endpoint with the same key is another request too
    other = client.post(f"/api/v1/conversations/{conv.pk}/notes/", {"text": "first text"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k-422")
    assert other.status_code == 422
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1


@pytest.mark.django_db
def test_json_key_order_and_spacing_are_the_same_body(thread, agent, eager_celery):
    conv, _ = thread
    client = _token_client(agent)
    url = f"/api/v1/conversations/{conv.pk}/reply/"
    a = client.post(url, '{"text": "hello", "private": false}', content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="k-json")
    b = client.post(url, '{"private":false,"text":"hello"}', content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="k-json")
    assert a.status_code == b.status_code == 202 and a.json()["id"] == b.json()["id"]


@pytest.mark.django_db
def test_a_key_belongs_to_its_user(thread, agent, team, eager_celery):
    conv, _ = thread
    other = UserFactory(role="agent")
    team.members.add(other)
    mine = _reply(_token_client(agent), conv, "from me", key="shared-key")
    theirs = _reply(_token_client(other), conv, "from them", key="shared-key")
    assert mine.status_code == theirs.status_code == 202
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db
def test_every_api_post_takes_the_key(thread, agent, eager_celery):
    conv, _ = thread
    client = _token_client(agent)
    url = f"/api/v1/conversations/{conv.pk}/notes/"
    first = client.post(url, {"text": "call back at 5"}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    again = client.post(url, {"text": "call back at 5"}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Note.objects.filter(conversation=conv).count() == 1


@pytest.mark.django_db
def test_a_refused_request_is_replayed_as_refused_and_a_bad_key_is_400(thread, agent):
    conv, _ = thread
    client = _token_client(agent)
    empty = _reply(client, conv, "   ", key="k-empty")
    assert empty.status_code == 400
    assert _reply(client, conv, "   ", key="k-empty").status_code == 400
    assert _reply(client, conv, "hi", key="x" * 256).status_code == 400
    assert _reply(client, conv, "hi", key="tab\there").status_code == 400
    assert not Message.objects.filter(conversation=conv, direction="out").exists()


@pytest.mark.django_db
def test_session_users_and_anonymous_requests(thread, agent, client):
    conv, _ = thread
    # anonymous: the view answers (401/403), no key is kept
    resp = client.post(f"/api/v1/conversations/{conv.pk}/reply/", {"text": "x"}, content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY="anon")
    assert resp.status_code in (401, 403)
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_keys_expire_after_24_hours(thread, agent, eager_celery):
    conv, _ = thread
    client = _token_client(agent)
    first = _reply(client, conv, "old reply", key="k-old")
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    # an expired key is a new request (even if the purge has not run yet)
    second = _reply(client, conv, "a new reply", key="k-old")
    assert second.status_code == 202 and second.json()["id"] != first.json()["id"]
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert idempotency_keys_purge() == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_stored_response_is_encrypted(agent):
    """A token's secret is in its creation response: the kept copy is not readable."""
    client = _token_client(agent)
    resp = client.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-1")
    assert resp.status_code == 201
    secret = resp.json().get("key") or resp.json().get("token")
    with connection.cursor() as cursor:
        cursor.execute("SELECT response FROM core_idempotencykey")
        (stored,) = cursor.fetchone()
    assert secret and secret not in stored
    again = client.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-1")
    assert again.json() == resp.json()


@pytest.mark.django_db
def test_schema_documents_the_header(admin_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    reply = schema["paths"]["/api/v1/conversations/{id}/reply/"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in reply["parameters"])
    assert {"409", "422"} <= set(reply["responses"])


def test_two_identical_posts_at_once_store_one_reply_and_post_once(
        transactional_db, live_server, twitter_api, twitter_account, eager_celery):
    """Real HTTP, two threads, the same key at the same moment: one Message, one tweet."""
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme where is my parcel", author_id="11")
    conv, agent = _live_thread(twitter_account, tweet)
    _, key = api_token_create(user=agent, name="script")
    barrier, results = threading.Barrier(2), []

    def post():
        barrier.wait()
        resp = requests.post(f"{live_server.url}/api/v1/conversations/{conv.pk}/reply/",
                             json={"text": "@alice on its way!"}, timeout=30,
                             headers={"Authorization": f"Token {key}", "Idempotency-Key": "dbl-1"})
        results.append(resp)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    connections.close_all()
    assert [r.status_code for r in results] == [202, 202]
    assert results[0].json()["id"] == results[1].json()["id"]
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in results) == ["", "true"]
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1
    assert len(twitter_api.replies_to(tweet["id"])) == 1


def test_two_identical_posts_at_once_without_a_key_store_one_reply(
        transactional_db, live_server, twitter_api, twitter_account, eager_celery):
    """A double click with no key at all: the same text from the same agent a moment
    later is the same reply."""
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme refund?", author_id="11")
    conv, agent = _live_thread(twitter_account, tweet)
    _, key = api_token_create(user=agent, name="script")
    barrier, results = threading.Barrier(2), []

    def post():
        barrier.wait()
        results.append(requests.post(f"{live_server.url}/api/v1/conversations/{conv.pk}/reply/",
                                     json={"text": "@alice refunded"}, timeout=30,
                                     headers={"Authorization": f"Token {key}"}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    connections.close_all()
    assert [r.status_code for r in results] == [202, 202]
    assert results[0].json()["id"] == results[1].json()["id"]
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1
    assert len(twitter_api.replies_to(tweet["id"])) == 1


def test_a_key_still_in_progress_past_the_wait_is_409_then_usable(transactional_db, settings, twitter_api,
                                                                   twitter_account):
    """The first request with the key holds it (uncommitted) for longer than the wait."""
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.5
    tweet = twitter_api.add_mention("@acme hi", author_id=twitter_api.add_user("11", "alice")["id"])
    conv, agent = _live_thread(twitter_account, tweet)
    client = _token_client(agent)
    holding, release = threading.Event(), threading.Event()

    def first_request_running():
        from django.db import transaction

        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(user=agent, key="slow-1", fingerprint="x" * 64)
                holding.set()
                release.wait(10)
                transaction.set_rollback(True)  # it failed: nothing kept
        finally:
            connections.close_all()

    holder = threading.Thread(target=first_request_running)
    holder.start()
    assert holding.wait(10)
    try:
        busy = _reply(client, conv, "hello", key="slow-1")
        assert busy.status_code == 409 and busy["Retry-After"] == "1"
        assert "in progress" in busy.json()["detail"]
    finally:
        release.set()
        holder.join(10)
    done = _reply(client, conv, "hello", key="slow-1")
    assert done.status_code == 202
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1
