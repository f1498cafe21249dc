"""The gap report (service met but experience bad, and the reverse) is counted by
the database: its figures must be the definition's, applied conversation by
conversation, for every mix of SLA, first response, sentiment, CSAT, tags and topics."""
import datetime as dt
import itertools
import random
from collections import Counter

import pytest

from apps.reports import selectors
from apps.reports.models import ConversationFact
from tests.factories import QueueFactory

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc


def _met(f):
    if f.sla_met or f.sla_breached:
        return f.sla_breached == 0
    return f.first_response_seconds is not None and f.first_response_seconds <= 3600


def _kind(f):
    bad = (f.last_sentiment is not None and f.last_sentiment <= -0.05) or (f.csat is not None and f.csat <= 2)
    good = not bad and ((f.last_sentiment is not None and f.last_sentiment >= 0.05)
                        or (f.csat is not None and f.csat >= 4))
    return "met_but_bad" if _met(f) and bad else "missed_but_good" if not _met(f) and good else None


def test_gap_counts_follow_the_definition_for_every_mix(settings):
    settings.REPORTS_GAP_FRT_TARGET_SECONDS = 3600
    rng = random.Random(5)
    queues = [QueueFactory(name="Billing"), QueueFactory(name="Returns")]
    facts = []
    combos = itertools.product([0, 1], [0, 1], [None, 60.0, 3600.0, 7200.0], [None, -0.6, -0.05, 0.0, 0.05, 0.7],
                               [None, 1, 2, 3, 4, 5])
    for i, (met, breached, frt, sentiment, csat) in enumerate(combos):
        facts.append(ConversationFact(
            conversation_id=i + 1, channel=rng.choice(["twitter", "email"]),
            queue_id=rng.choice([0, *(q.pk for q in queues)]), sla_met=met, sla_breached=breached,
            first_response_seconds=frt, last_sentiment=sentiment, csat=csat,
            last_resolved_at=dt.datetime(2026, 11, 3, tzinfo=UTC) + dt.timedelta(minutes=i),
            tags=rng.choice([[], ["vip"], ["vip", "refund"]]), topics=rng.choice([[], ["billing"]])))
    outside = ConversationFact(conversation_id=10_000, channel="twitter", sla_met=1, last_sentiment=-0.9,
                               last_resolved_at=dt.datetime(2026, 11, 9, tzinfo=UTC))
    ConversationFact.objects.bulk_create([*facts, outside])

    report = selectors.gap_report(params=selectors.ReportParams(start=dt.date(2026, 11, 1),
                                                                end=dt.date(2026, 11, 5)), limit=10)
    kinds = Counter(_kind(f) for f in facts)
    assert report["totals"] == {"conversations": len(facts), "met_but_bad": kinds["met_but_bad"],
                                "missed_but_good": kinds["missed_but_good"]}
    assert kinds["met_but_bad"] > 10 and kinds["missed_but_good"] > 10

    def expect(key):
        out = {}
        for f in facts:
            for name in key(f):
                row = out.setdefault(name, {"name": name, "conversations": 0, "met_but_bad": 0,
                                            "missed_but_good": 0})
                row["conversations"] += 1
                if _kind(f):
                    row[_kind(f)] += 1
        return sorted(out.values(), key=lambda r: (-r["met_but_bad"], r["name"]))

    names = {0: "(none)", **{q.pk: q.name for q in queues}}
    assert report["by_channel"] == expect(lambda f: [f.channel])
    assert report["by_queue"] == expect(lambda f: [names[f.queue_id]])
    assert report["by_tag"] == expect(lambda f: f.tags or ["(no tag)"])
    assert report["by_topic"] == expect(lambda f: f.topics or ["(no topic)"])
    newest = sorted(facts, key=lambda f: (-f.last_resolved_at.timestamp(), f.conversation_id))
    for kind in ("met_but_bad", "missed_but_good"):
        assert [r["conversation_id"] for r in report[kind]] == [
            f.conversation_id for f in newest if _kind(f) == kind][:10]
