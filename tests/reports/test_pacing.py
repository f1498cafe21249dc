"""The reports give way to the inbox under a burst (apps/reports/pacing.py): while mentions wait
to be stored or routed, the applier counts nothing and comes back shortly; a stuck delivery or a
delivery that failed is not a burst; and the reports never wait beyond REPORTS_YIELD_MAX_SECONDS."""
import datetime as dt
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.connectors.models import PushDelivery
from apps.inbox.models import Message
from apps.ingest.selectors import inbox_behind
from apps.reports import tasks
from apps.reports.models import MetricEvent
from apps.routing.models import UnroutedMessage

from .test_correctness import world  # noqa: F401 - the fixture history


@pytest.fixture(autouse=True)
def _yield_on(settings):
    settings.REPORTS_YIELD_BACKLOG_SECONDS = 1.0
    settings.REPORTS_YIELD_RETRY_SECONDS = 10
    settings.REPORTS_YIELD_MAX_SECONDS = 600
    cache.delete("reports:yield-retry")
    yield
    cache.delete("reports:yield-retry")


def _customer_message(world, name: str):  # noqa: F811
    """A customer's message stored and routed a moment ago: the reports have not counted it."""
    return world.customer_says(name, timezone.now() - dt.timedelta(seconds=3), "My order is late", who=name)


def _delivery(world, *, age: float, attempts: int = 0) -> PushDelivery:  # noqa: F811
    delivery = PushDelivery.objects.create(account=world.accounts["twitter"], mentions=[], attempts=attempts)
    PushDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - dt.timedelta(seconds=age))
    return delivery


def _counted(message) -> bool:
    return MetricEvent.objects.filter(key=f"in:{message.pk}").exists()


def _apply_later():
    return mock.patch.object(tasks.rollups_apply_task, "apply_async")


def test_a_delivery_waiting_to_be_stored_makes_the_reports_wait_then_they_count(world):  # noqa: F811
    message = _customer_message(world, "late1")
    delivery = _delivery(world, age=5)
    with _apply_later() as later:
        tasks.rollups_apply_task()
        tasks.rollups_apply_task()  # beat meanwhile: still one later run queued, not two
    assert not _counted(message)
    assert [c.kwargs for c in later.call_args_list] == [{"countdown": 10}]

    PushDelivery.objects.filter(pk=delivery.pk).update(status=PushDelivery.Status.DONE)  # ingest caught up
    tasks.rollups_apply_task()
    assert _counted(message)


def test_a_message_waiting_for_routing_makes_the_reports_wait(world):  # noqa: F811
    message = _customer_message(world, "late2")
    waiting = _customer_message(world, "late3")
    UnroutedMessage.objects.create(message=waiting, arrived_at=timezone.now() - dt.timedelta(seconds=4))
    with _apply_later():
        tasks.rollups_apply_task()
    assert not _counted(message)
    UnroutedMessage.objects.filter(message=waiting).delete()  # routed
    tasks.rollups_apply_task()
    assert _counted(message) and _counted(waiting)


@pytest.mark.parametrize("age, attempts", [(0.0, 0), (900.0, 0), (5.0, 1)],
                         ids=["just-arrived", "stuck-for-15-minutes", "failed-once-waits-for-the-sweep"])
def test_what_is_not_a_burst_does_not_hold_the_reports(world, age, attempts):  # noqa: F811
    """Just arrived (within the second), stuck for longer than a burst lasts, or failed and waiting
    for the sweep: the reports count as usual (stuck work is the alerts' business)."""
    message = _customer_message(world, f"ok{int(age)}{attempts}")
    _delivery(world, age=age, attempts=attempts)
    tasks.rollups_apply_task()
    assert _counted(message)


def test_the_reports_stop_waiting_once_they_are_the_limit_behind(world, settings):  # noqa: F811
    settings.REPORTS_YIELD_MAX_SECONDS = 2  # the message is 3 s old: the reports are that far behind
    message = _customer_message(world, "late4")
    _delivery(world, age=5)
    tasks.rollups_apply_task()
    assert _counted(message)


def test_off_when_the_setting_is_zero(world, settings):  # noqa: F811
    settings.REPORTS_YIELD_BACKLOG_SECONDS = 0
    message = _customer_message(world, "late5")
    _delivery(world, age=5)
    tasks.rollups_apply_task()
    assert _counted(message)


@pytest.mark.django_db
def test_inbox_behind_reads_the_in_flight_sets_only():
    """One statement, however many done deliveries the table holds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert inbox_behind(seconds=1) is False
    assert len(queries) == 1




def test_a_run_that_began_before_a_burst_steps_aside_between_transactions(world, monkeypatch):  # noqa: F811
    """The applier asks again after each transaction: the first conversation's messages are
    counted, then a delivery has waited over a second and the rest wait for the next run, which
    counts them (nothing counted twice, nothing skipped: the watermark did not move)."""
    from apps.reports import inbound as counting

    monkeypatch.setattr(counting, "INBOUND_CONVERSATIONS_A_TRANSACTION", 1)
    first, second, third = (_customer_message(world, name) for name in ("b1", "b2", "b3"))
    asked = []

    def burst_after_the_first():
        asked.append(1)
        if len(asked) == 1:
            _delivery(world, age=5)
        return inbox_behind(seconds=1)

    with _apply_later():
        assert counting.inbound_messages_record(pause=burst_after_the_first) == 1
    assert [_counted(m) for m in (first, second, third)] == [True, False, False]
    PushDelivery.objects.update(status=PushDelivery.Status.DONE)
    assert counting.inbound_messages_record(pause=burst_after_the_first) == 2
    assert all(_counted(m) for m in (first, second, third))
    inbound = Message.objects.filter(direction=Message.Direction.INBOUND).count()
    assert MetricEvent.objects.filter(kind="msg_in").count() == inbound  # the world's history too, each once


def test_a_retry_setting_of_zero_still_waits_a_second(world, settings):  # noqa: F811
    """REPORTS_YIELD_RETRY_SECONDS=0 would queue the next run at once, and that one the next: a
    loop as long as the burst. At least a second between them."""
    settings.REPORTS_YIELD_RETRY_SECONDS = 0
    _customer_message(world, "late6")
    _delivery(world, age=5)
    with _apply_later() as later:
        tasks.rollups_apply_task()
    assert [c.kwargs for c in later.call_args_list] == [{"countdown": 1}]
