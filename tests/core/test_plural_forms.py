"""Counts read as English: "1 conversation", "2 conversations", never "1 conversations" or
"conversation(s)" (issue 21). Templates use `pluralize`, Python `ngettext`; the pages and messages
a user reads with a count of one, and a scan of the templates for a bare count before a plural."""
import pathlib
import re

import pytest
from django.conf import settings
from django.urls import reverse

from apps.connectors.models import PushDelivery
from apps.routing.models import RoutingRule
from tests.factories import ChannelAccountFactory, ConversationFactory

pytestmark = pytest.mark.django_db

PLURALS = ("conversations", "messages", "minutes", "hours", "days", "answers", "replies", "mentions",
           "customers", "agents", "followers", "points", "deliveries", "seconds", "members", "rules", "tags")


def test_no_template_prints_a_bare_count_before_a_plural_noun():
    bare = re.compile(r"\{\{[^}]*\}\}\s*(" + "|".join(PLURALS) + r")\b")
    found = []
    for path in pathlib.Path(settings.BASE_DIR, "templates").rglob("*.*"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line):
                found.append(f"{path.name}:{n}: {line.strip()[:120]}")
    assert not found, "use |pluralize: " + "; ".join(found)


def test_bulk_reassign_of_one_conversation_says_one(client, supervisor, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0)
    client.force_login(supervisor)
    page = client.post(reverse("supervisor:reassign"), {"priority": "0", "scope": "all", "to": f"agent:{agent.pk}",
                                                       "reason": "to Dana", "confirmed": "1"}, follow=True)
    html = page.content.decode()
    assert "Moved 1 conversation; 0 were there already." in html and "(s)" not in html
    page = client.post(reverse("supervisor:reassign"), {"ids": [conv.pk], "to": f"agent:{agent.pk}",
                                                       "reason": "again", "confirmed": "1"}, follow=True)
    assert "Moved 0 conversations; 1 was there already." in page.content.decode()


def test_capacity_of_one_says_one_conversation(client, supervisor, agent):
    client.force_login(supervisor)
    page = client.post(reverse("supervisor:agent-capacity", args=[agent.pk]), {"capacity": "1"}, follow=True)
    assert f"{agent.display_name} now takes up to 1 open conversation." in page.content.decode()
    page = client.post(reverse("supervisor:agent-capacity", args=[agent.pk]), {"capacity": "3"}, follow=True)
    assert "now takes up to 3 open conversations." in page.content.decode()


def test_rules_page_says_one_follower_and_one_point(client, supervisor):
    RoutingRule.objects.create(name="tiny", min_followers=1, max_followers=2, priority_boost=1)
    RoutingRule.objects.create(name="minus", priority_boost=-1)
    client.force_login(supervisor)
    html = client.get(reverse("routing:rules")).content.decode()
    assert "≥ 1 follower;" in html and "≤ 2 followers;" in html
    assert "+1 point;" in html and "-1 point;" in html and "1 points" not in html


def test_connector_health_says_one_delivery_failed(client, supervisor):
    account = ChannelAccountFactory(provider="webhook", name="Shop chat", handle="shop-chat", external_user_id="",
                                    credentials={})
    PushDelivery.objects.create(account=account, status=PushDelivery.Status.FAILED, attempts=5)
    client.force_login(supervisor)
    html = client.get(reverse("connectors:health")).content.decode()
    assert "1 delivery failed" in html and "1 deliveries" not in html
