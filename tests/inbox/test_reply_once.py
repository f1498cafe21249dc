"""One reply, one post (issue 18): the composer's double submit stores one reply, and
replies left queued/sending after a Redis loss are sent by the sweep, exactly once."""
import datetime as dt
import re
import threading
import zoneinfo

import pytest
import requests
from django.db import connection, connections
from django.utils import timezone

from apps.inbox.models import Message
from apps.inbox.sending import SendRetry, message_send, messages_send_sweep
from apps.inbox.services import reply_create
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="issue 18 is about PostgreSQL")


def _thread(twitter_api, account, queue):
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme my order is late", author_id="11")
    conv = ConversationFactory(queue=queue, channel_account=account, identity__external_id="11",
                               identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    return conv, tweet


@pytest.fixture
def thread(twitter_api, twitter_account, queue):
    return _thread(twitter_api, twitter_account, queue)


def _form(html: str) -> dict:
    form = html[html.index('id="composer"'):]
    form = form[:form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert fields.get("reply_token"), "the composer carries a one-time token"
    return fields


def _outbound(conv):
    return Message.objects.filter(conversation=conv, direction="out")


# --- the composer ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_composer_resubmit_stores_one_reply(client, agent, thread, twitter_api, eager_celery,
                                            django_capture_on_commit_callbacks):
    conv, tweet = thread
    client.force_login(agent)
    form = _form(client.get(f"/inbox/c/{conv.pk}/").content.decode())
    data = {**form, "text": "@alice sorry, on it", "private": ""}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"/inbox/c/{conv.pk}/reply/", data)
    assert first.status_code == 302
    # long after the double-click window (back button, resubmit): the token still says "the same reply"
    _outbound(conv).update(sent_at=timezone.now() - dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"/inbox/c/{conv.pk}/reply/", data)
    assert again.status_code == 302
    assert _outbound(conv).count() == 1
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    # a fresh form is a new reply
    fresh = _form(client.get(f"/inbox/c/{conv.pk}/").content.decode())
    assert fresh["reply_token"] != form["reply_token"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/inbox/c/{conv.pk}/reply/", {**fresh, "text": "@alice sorry, on it", "private": ""})
    assert _outbound(conv).count() == 2


def test_composer_double_click_stores_one_reply(transactional_db, live_server, twitter_api, twitter_account,
                                                eager_celery):
    """Two submits of one rendered form at the same moment, over real HTTP."""
    from django.test import Client

    team = TeamFactory()
    conv, tweet = _thread(twitter_api, twitter_account, QueueFactory(team=team, is_default=True))
    agent = UserFactory(role="agent")
    team.members.add(agent)
    django_client = Client()
    django_client.force_login(agent)
    session = requests.Session()
    session.cookies.update({k: v.value for k, v in django_client.cookies.items()})
    page = session.get(f"{live_server.url}/inbox/c/{conv.pk}/", timeout=30)
    assert page.status_code == 200
    form = _form(page.text)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    data = {**form, "csrfmiddlewaretoken": csrf, "text": "@alice refund sent", "private": ""}
    barrier, codes = threading.Barrier(2), []

    def submit():
        barrier.wait()
        resp = session.post(f"{live_server.url}/inbox/c/{conv.pk}/reply/", data=data, timeout=30,
                            allow_redirects=False, headers={"Referer": f"{live_server.url}/inbox/c/{conv.pk}/"})
        codes.append(resp.status_code)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    connections.close_all()
    assert codes == [302, 302]
    assert _outbound(conv).count() == 1
    assert len(twitter_api.replies_to(tweet["id"])) == 1


# --- the sweep --------------------------------------------------------------------------------

def _long_ago(message, **fields):
    """What an hour-old row looks like (update(): auto_now is not touched)."""
    past = timezone.now() - dt.timedelta(hours=1)
    Message.objects.filter(pk=message.pk).update(updated_at=past, **fields)


@pytest.mark.django_db
def test_sweep_sends_a_reply_whose_task_was_lost_exactly_once(thread, agent, twitter_api, eager_celery,
                                                              django_capture_on_commit_callbacks):
    conv, tweet = thread
    with django_capture_on_commit_callbacks(execute=False):  # Redis lost the send task
        msg = reply_create(conversation=conv, agent=agent, text="@alice we are on it")
    _long_ago(msg)
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep() == 1
    msg.refresh_from_db()
    assert msg.send_status == "sent" and msg.external_id
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep() == 0
    assert len(twitter_api.replies_to(tweet["id"])) == 1


@pytest.mark.django_db
def test_sweep_leaves_a_fresh_reply_to_its_task(thread, agent):
    conv, _ = thread
    reply_create(conversation=conv, agent=agent, text="@alice just queued")
    assert messages_send_sweep() == 0


@pytest.mark.django_db
def test_sweep_after_a_lost_retry_of_an_unknown_outcome_never_posts_twice(
        thread, agent, twitter_api, settings, eager_celery, django_capture_on_commit_callbacks):
    """The post reached the network, the answer did not, and the retry task went with Redis."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    conv, tweet = thread
    twitter_api.add_fault("POST", "/2/tweets", delay=1.0, after_handling=True)
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice done")
    with pytest.raises(SendRetry):
        message_send(message_id=msg.pk)
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    msg.refresh_from_db()
    assert msg.send_status == "sending" and msg.next_attempt_at is not None
    _long_ago(msg, next_attempt_at=timezone.now() - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep() == 1
    msg.refresh_from_db()
    assert msg.send_status == "sent"
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    assert msg.external_id == twitter_api.replies_to(tweet["id"])[0]["id"]


@pytest.mark.django_db
def test_a_reply_waiting_for_its_429_reset_is_not_swept_and_says_when(
        client, thread, agent, twitter_api, eager_celery, django_capture_on_commit_callbacks):
    conv, tweet = thread
    reset = timezone.now().replace(microsecond=0) + dt.timedelta(minutes=30)
    twitter_api.add_fault("POST", "/2/tweets", status=429, headers={"x-rate-limit-reset": str(int(reset.timestamp()))})
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice soon")
    with pytest.raises(SendRetry):
        message_send(message_id=msg.pk)
    msg.refresh_from_db()
    assert msg.send_status == "queued"
    assert abs((msg.next_attempt_at - reset).total_seconds()) <= 2
    # its retry task is lost too; the sweep still leaves it until the reset
    Message.objects.filter(pk=msg.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep() == 0
    assert twitter_api.replies_to(tweet["id"]) == []
    # the thread says when it goes
    client.force_login(agent)
    page = client.get(f"/inbox/c/{conv.pk}/").content.decode()
    at = timezone.localtime(msg.next_attempt_at, zoneinfo.ZoneInfo(agent.time_zone)).strftime("%H:%M")
    assert f"will retry at <time datetime=\"{msg.next_attempt_at.isoformat()}\">{at}</time>" in page
    # and the API shows it
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(agent)
    shown = [m for m in api.get(f"/api/v1/conversations/{conv.pk}/messages/").json()
             if isinstance(m, dict) and m.get("id") == msg.pk] or [
        m for m in api.get(f"/api/v1/conversations/{conv.pk}/messages/").json().get("results", [])
        if m["id"] == msg.pk]
    assert shown[0]["next_attempt_at"]
    # past the reset (and the sweep's margin), a lost retry is sent by the sweep, once
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep(now=reset + dt.timedelta(minutes=3)) == 1
    msg.refresh_from_db()
    assert msg.send_status == "sent"
    assert len(twitter_api.replies_to(tweet["id"])) == 1


@pytest.mark.django_db
def test_sweep_finishes_a_reply_left_sending_by_a_killed_worker(thread, agent, twitter_api, eager_celery,
                                                                django_capture_on_commit_callbacks):
    """`sending` with no outcome recorded, long past the send lease, its redelivery lost with
    Redis: the sweep looks on the network first, then posts it once."""
    conv, tweet = thread
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice here is your code")
    _long_ago(msg, send_status="sending", send_attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_send_sweep() == 1
    msg.refresh_from_db()
    assert msg.send_status == "sent"
    assert len(twitter_api.replies_to(tweet["id"])) == 1


@pytest.mark.django_db
def test_the_same_text_after_a_failed_reply_is_a_new_reply(thread, agent):
    conv, _ = thread
    first = reply_create(conversation=conv, agent=agent, text="@alice sorry")
    Message.objects.filter(pk=first.pk).update(send_status="failed", failure_reason="403")
    again = reply_create(conversation=conv, agent=agent, text="@alice sorry")
    assert again.pk != first.pk and again.send_status == "queued"
    # while the first is live, the same text a moment later is the same reply
    assert reply_create(conversation=conv, agent=agent, text="@alice sorry").pk == again.pk
