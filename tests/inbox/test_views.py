"""The web inbox pages: login, list, thread, reply form; user text escaped."""
import pytest
from django.urls import reverse

from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_inbox_requires_login(client):
    resp = client.get(reverse("inbox:list"))
    assert resp.status_code == 302 and reverse("login") in resp["Location"]


def test_agent_sees_conversation_and_thread_with_user_text_escaped(client, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, subject="<script>alert(1)</script>")
    MessageFactory(conversation=conv, text="<img src=x onerror=alert(1)> \u202eevil \u200bzero")
    client.force_login(agent)
    page = client.get(reverse("inbox:list")).content.decode()
    assert f"@{conv.identity.handle}" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    thread = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "<img src=x" not in thread and "&lt;img src=x onerror=alert(1)&gt;" in thread
    assert "\u202eevil \u200bzero" in thread  # kept intact, shown escaped


def test_reply_form_queues_reply_and_shows_it(client, agent, queue, twitter_account,
                                              django_capture_on_commit_callbacks):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    MessageFactory(conversation=conv)
    client.force_login(agent)
    from unittest import mock

    with mock.patch("apps.inbox.tasks.message_send_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            resp = client.post(reverse("inbox:reply", args=[conv.pk]), {"text": "On it!"}, follow=True)
    delay.assert_called_once()
    page = resp.content.decode()
    assert "Reply queued" in page and "On it!" in page and "Queued" in page


def test_failed_reply_shows_the_reason(client, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    MessageFactory(conversation=conv, direction="out", external_id=None, send_status="failed",
                   failure_reason="Twitter refused the credentials (401): Unauthorized", author_user=agent)
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "Not sent: Twitter refused the credentials (401)" in page


def test_agent_cannot_open_another_teams_conversation(client, agent, twitter_account):
    from tests.factories import QueueFactory

    other = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())
    client.force_login(agent)
    assert client.get(reverse("inbox:detail", args=[other.pk])).status_code == 404
    assert client.get(f"/api/v1/conversations/{other.pk}/").status_code in (401, 403, 404)


def test_marketing_cannot_open_the_inbox(client, marketing_user):
    client.force_login(marketing_user)
    assert client.get(reverse("inbox:list")).status_code == 403


def test_healthz_reports_checks(client):
    resp = client.get("/healthz")
    assert resp.json()["checks"]["database"]["ok"] is True


def test_credentials_are_encrypted_at_rest(twitter_account):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT credentials FROM connectors_channelaccount WHERE id = %s", [twitter_account.pk])
        stored = cur.fetchone()[0]
    assert "test-bearer" not in stored and stored.startswith("gAAAA")
    twitter_account.refresh_from_db()
    assert twitter_account.credentials["bearer_token"] == "test-bearer"


def test_api_error_is_json_detail(api_client, agent):
    api_client.force_authenticate(agent)
    resp = api_client.get("/api/v1/conversations/999999/")
    assert resp.status_code == 404 and "detail" in resp.json()
    anon = api_client.__class__().get("/api/v1/conversations/")
    assert anon.status_code == 401 and "detail" in anon.json()


def test_openapi_schema_and_docs_are_served(client, agent):
    client.force_login(agent)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/conversations/{id}/reply/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn." not in docs.content


def test_api_list_shows_each_row_in_a_fixed_number_of_queries(api_client, agent, queue, twitter_account,
                                                              django_assert_max_num_queries):
    from apps.inbox.models import Tag

    vip = Tag.objects.create(name="vip")
    for i in range(30):
        c = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=i % 4)
        c.tags.add(vip)
    api_client.force_authenticate(agent)
    with django_assert_max_num_queries(3):  # the rows with their joins, their tags, the user's teams
        rows = api_client.get("/api/v1/conversations/").json()["results"]
    assert len(rows) == 30
    assert {r["priority_label"] for r in rows} == {"Urgent", "High", "Normal", "Low"}
    assert all(r["channel"] == "twitter" and r["tags"] == ["vip"] and r["identity"]["handle"] for r in rows)
