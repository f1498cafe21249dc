"""Routing reads its configuration (rules, queues, SLA policies, calendars) once
and shares it between the batches of a process while its version stays; a
supervisor's edit still applies from the next mention on, in this process and
in the others (the version is bumped when the edit commits)."""
import pytest
from django.core.cache import cache

from apps.inbox.models import Queue
from apps.routing import config_cache
from apps.routing.config_cache import CONFIG_VERSION_KEY, RoutingCache
from apps.routing.models import RoutingRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing(team, queue):
    return Queue.objects.create(name="Billing", team=team)


def test_batches_share_the_configuration_without_reading_it_again(queue, django_assert_num_queries):
    RoutingRule.objects.create(name="Refunds", position=1, keywords=["refund"], set_queue=queue)
    first = RoutingCache()
    assert [r.name for r in first.rules] and first.default_queue == queue and first.policies == []
    with django_assert_num_queries(0):
        second = RoutingCache()
        assert [r.name for r in second.rules] == ["Refunds"] and second.default_queue == queue


def test_a_rule_saved_here_applies_to_the_next_mention(mention, queue, billing):
    assert mention("@acme I want a refund").queue == queue
    RoutingRule.objects.create(name="Refunds", position=1, keywords=["refund"], set_queue=billing)
    assert mention("@acme refund please").queue == billing
    RoutingRule.objects.filter(name="Refunds").delete()  # a queryset delete still sends post_delete
    assert mention("@acme refund again").queue == queue


def test_an_edit_committed_by_another_process_applies_to_the_next_mention(mention, queue, billing):
    rule = RoutingRule.objects.create(name="Refunds", position=1, keywords=["refund"], set_queue=billing)
    assert mention("@acme refund please").queue == billing
    # another process (the web app) edits the rule: its rows change and, on commit, the version
    RoutingRule.objects.filter(pk=rule.pk).update(set_queue=queue)  # no signal in this process
    assert mention("@acme refund again").queue == billing  # this process does not know yet
    cache.set(CONFIG_VERSION_KEY, "changed-elsewhere", None)
    assert mention("@acme refund, third time").queue == queue


def test_an_edit_that_skips_the_signals_applies_within_the_maximum_age(mention, queue, billing, monkeypatch):
    rule = RoutingRule.objects.create(name="Refunds", position=1, keywords=["refund"], set_queue=billing)
    assert mention("@acme refund please").queue == billing
    RoutingRule.objects.filter(pk=rule.pk).update(set_queue=queue)
    monkeypatch.setattr(config_cache, "CONFIG_MAX_AGE_SECONDS", 0.0)
    assert mention("@acme refund again").queue == queue


def test_without_the_cache_every_batch_reads_the_configuration(queue, monkeypatch, django_assert_num_queries):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unreachable)
    RoutingCache().queues  # noqa: B018
    with django_assert_num_queries(1):
        assert RoutingCache().default_queue == queue
