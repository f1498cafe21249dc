"""A signed push delivery, queued through Redis to a real Celery worker, ends
up as a conversation the API lists."""
import json
import time

import pytest

from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Conversation
from tests.conftest import requires_redis
from tests.factories import ChannelAccountFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - fixture

pytestmark = [requires_redis, pytest.mark.integration]


@pytest.mark.django_db(transaction=True)
def test_push_delivery_reaches_the_inbox_through_the_worker(celery_worker_on_redis, client, api_client,  # noqa: F811
                                                            admin_user):
    account = ChannelAccountFactory(provider="webhook", handle="app-reviews", credentials={},
                                    hook_secrets={"inbound_token": "tok", "signing_secret": "sec"})
    body = json.dumps({"messages": [
        {"id": "review-1", "text": "App crashes on login 😡", "author": {"id": "u1", "handle": "dana"}},
        {"id": "review-2", "text": "Still crashing", "in_reply_to": "review-1", "author": {"id": "u1"}},
    ]}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sec", body).items()}
    resp = client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer tok", **headers)
    assert resp.status_code == 200 and resp.json() == {"accepted": 2}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not Conversation.objects.filter(channel_account=account).exists():
        time.sleep(0.1)
    api_client.force_authenticate(admin_user)
    rows = api_client.get("/api/v1/conversations/", {"channel": "webhook"}).json()["results"]
    assert len(rows) == 1
    conv = Conversation.objects.get(channel_account=account)
    assert list(conv.messages.values_list("external_id", flat=True).order_by("sent_at", "id")) == ["review-1", "review-2"]
