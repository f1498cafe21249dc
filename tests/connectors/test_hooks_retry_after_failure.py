"""A push delivery whose request died before it was stored (a 5xx, a web worker
killed mid-request) is taken when the sender retries the same signed request: the
replay guard used to answer 409 "already received" and the delivery was lost."""
import json
import time

import pytest
from django.db import OperationalError
from django.test import Client

from apps.connectors import hooks
from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers

from .hook_accounts import webhook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
BODY = json.dumps({"messages": [{"id": "chat-1", "text": "Is my parcel lost?", "created_at": "2026-11-23T08:00:00Z",
                                 "author": {"id": "visitor-1", "handle": "ana"}}]}).encode()


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _headers():
    signed = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", BODY).items()}
    return {"HTTP_AUTHORIZATION": "Bearer in-token-123", **signed}


def _post(client, account, headers):
    return client.post(f"/hooks/webhook/{account.pk}/", data=BODY, content_type="application/json", **headers)


def test_a_delivery_that_failed_with_a_5xx_is_taken_when_retried_with_the_same_signature(webhook, monkeypatch):
    from apps.connectors import push

    headers = _headers()
    real_accept = push.push_delivery_accept

    def database_down(**kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(push, "push_delivery_accept", database_down)
    assert _post(Client(raise_request_exception=False), webhook, headers).status_code == 500
    assert not PushDelivery.objects.exists()
    monkeypatch.setattr(push, "push_delivery_accept", real_accept)
    resp = _post(Client(), webhook, headers)  # the network's retry, same signed request
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    assert PushDelivery.objects.count() == 1
    again = _post(Client(), webhook, headers)  # once stored, the same request is a replay
    assert again.status_code == 409 and "replay" in again.json()["detail"]


def test_a_delivery_whose_web_worker_was_killed_mid_request_is_taken_once_its_claim_lapses(webhook, monkeypatch):
    """SIGKILL leaves no chance to clean up: the signature stays claimed "in flight".
    The retry gets 503 (retry later) instead of 409, and is taken once the claim lapses."""
    monkeypatch.setattr(hooks, "REPLAY_IN_FLIGHT_SECONDS", 1)
    headers = _headers()
    hooks.replay_check(webhook.pk, headers["HTTP_X_CXINBOX_SIGNATURE"])  # what the killed request had done
    hooks._replay_claim.set(None)
    resp = _post(Client(), webhook, headers)
    assert resp.status_code == 503 and "try again" in resp.json()["detail"]
    time.sleep(1.2)
    resp = _post(Client(), webhook, headers)
    assert resp.status_code == 200 and PushDelivery.objects.count() == 1
