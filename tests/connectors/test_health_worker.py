"""With a real Celery worker on Redis: each account polls in its own task, so a
network that hangs holds up only its own account."""
import time

import pytest

from apps.connectors.models import ChannelAccount
from apps.connectors.standins.mastodon import MastodonStandIn
from apps.inbox.models import Message
from apps.ingest.tasks import poll_due_accounts_task
from tests.conftest import requires_redis
from tests.factories import ChannelAccountFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - fixture

pytestmark = [requires_redis, pytest.mark.integration]


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_hanging_network_does_not_hold_up_other_accounts(celery_worker_on_redis, settings):  # noqa: F811
    settings.PROVIDER_TIMEOUT_SECONDS = 6.0
    with MastodonStandIn(host="slow.example") as slow_net, MastodonStandIn() as fast_net:
        slow = ChannelAccountFactory(provider="mastodon", handle="@acme@slow.example", api_base_url=slow_net.base_url,
                                     external_user_id=slow_net.brand["id"], credentials={"access_token": "mastodon-token"})
        fast = ChannelAccountFactory(provider="mastodon", handle="@acme@fast.example", api_base_url=fast_net.base_url,
                                     external_user_id=fast_net.brand["id"], credentials={"access_token": "mastodon-token"})
        slow_net.add_fault("GET", "/api/v1/notifications", delay=4.0, status=200, body=b"[]")
        fast_net.add_status("is anyone there?", author=fast_net.add_account("ivy"))
        started = time.monotonic()
        poll_due_accounts_task.delay()
        assert _wait_for(lambda: Message.objects.filter(channel_account=fast).exists(), 10)
        fast_done = time.monotonic() - started
        assert _wait_for(lambda: ChannelAccount.objects.get(pk=slow.pk).last_success_at is not None, 15)
        slow_done = time.monotonic() - started
    assert fast_done < 3.5, f"the fast account waited {fast_done:.1f}s behind the hanging one"
    assert slow_done >= 4.0
