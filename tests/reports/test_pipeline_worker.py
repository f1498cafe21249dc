"""Reports on the real pipeline: a mention is polled, ingested and routed by a real
Celery worker on Redis, an agent replies through the API, and the report API then
shows the inbound message, its sentiment and the first response, all applied by
the `reports.apply_rollups` task on the worker (queue `reports`)."""
import pytest
from rest_framework.authtoken.models import Token

from apps.ingest.tasks import poll_due_accounts_task
from apps.reports.tasks import rollups_apply_task
from tests.conftest import requires_redis
from tests.factories import UserFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - fixture
from tests.integration.test_end_to_end import wait_for

pytestmark = [requires_redis, pytest.mark.integration]


def test_mention_reply_and_resolve_reach_the_report(twitter_api, twitter_account, queue, agent, api_client,
                                                    celery_worker_on_redis):  # noqa: F811
    twitter_api.add_user("2244994945", "angry_customer", "Angry Customer", followers=5400)
    twitter_api.add_mention("@acme worst service ever, I want a refund! #fail", author_id="2244994945")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")
    poll_due_accounts_task.delay()

    def routed():
        """the conversation routed to the queue"""
        rows = api_client.get("/api/v1/conversations/").json()["results"]
        return rows[0] if rows and rows[0]["queue"] == queue.pk else None

    conv = wait_for(routed)
    assert api_client.post(f"/api/v1/conversations/{conv['id']}/reply/", {"text": "So sorry, on it."},
                           format="json").status_code == 202  # queued for sending
    wait_for(lambda: len(twitter_api.posted) == 1, timeout=30)
    assert api_client.post(f"/api/v1/conversations/{conv['id']}/status/", {"status": "resolved"},
                           format="json").status_code == 200
    rollups_apply_task.delay()  # what beat does every minute (changes also ask for one)

    supervisor = UserFactory(role="supervisor")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=supervisor).key}")

    def reported():
        """the service report shows the message, the first response and the resolution"""
        totals = api_client.get("/api/v1/reports/service/", {"tz": "UTC"}).json()["totals"]
        done = totals["volume_in"] == 1 and totals["first_response"]["count"] == 1 and totals["resolved"] == 1
        return totals if done else None

    totals = wait_for(reported, timeout=40, interval=0.5)
    assert totals["opened"] == 1 and totals["volume_out"] == 1 and totals["resolution_rate"] == 1.0
    marketing = api_client.get("/api/v1/reports/marketing/", {"tz": "UTC"}).json()
    assert marketing["totals"]["negative"] == 1
    assert [h["term"] for h in marketing["hashtags"]] == ["fail"]
