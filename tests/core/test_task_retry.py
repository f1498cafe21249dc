"""A task that fails while the broker is down: its retry cannot be queued.
Celery then rejects it without requeue, which on Redis deletes it; ours hand it back."""
import pytest
from celery.canvas import Signature
from celery.exceptions import Reject, Retry

from apps.inbox.tasks import message_send_task
from apps.ingest.tasks import mentions_ingest_task, push_delivery_ingest_task

TASKS = {t.name: t for t in (mentions_ingest_task, push_delivery_ingest_task, message_send_task)}


@pytest.fixture
def broker_down(monkeypatch):
    def publish(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Signature, "apply_async", publish)


@pytest.mark.parametrize("name", ["ingest.mentions", "outbound.send_message", "ingest.push_delivery"])
def test_a_retry_the_broker_cannot_take_hands_the_task_back(name, broker_down):
    task = TASKS[name]
    task.push_request(id="t-1", args=[1], kwargs={}, retries=0, called_directly=False, is_eager=False,
                      delivery_info={})
    try:
        with pytest.raises(Reject) as caught:
            task.retry(exc=ValueError("database hiccup"), countdown=1)
    finally:
        task.pop_request()
    assert caught.value.requeue, "the task would be deleted from Redis: lost"


def test_a_retry_the_broker_takes_is_an_ordinary_retry(monkeypatch):
    sent = []
    monkeypatch.setattr(Signature, "apply_async", lambda self, *a, **kw: sent.append(self))
    task = mentions_ingest_task
    task.push_request(id="t-2", args=[1, []], kwargs={}, retries=0, called_directly=False, is_eager=False,
                      delivery_info={})
    try:
        with pytest.raises(Retry):
            task.retry(exc=ValueError("database hiccup"), countdown=1)
    finally:
        task.pop_request()
    assert len(sent) == 1 and sent[0].options["countdown"] == 1
