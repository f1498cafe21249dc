"""One rule for a tag's name (apps/inbox/tags.py), followed the same way by the thread page's tag
box, the REST API and routing rules' "add tags": the same hostile values are refused on every
path with the same message, nothing is cut short or saved, and a valid tag of 64 characters is
kept whole."""
import html

import pytest
from django.urls import reverse

from apps.inbox.models import Tag
from apps.routing.models import RoutingRule
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

HOSTILE = [
    ("<script>alert(1)</script>", "is not allowed"),
    ("<img src=x onerror=alert(1)>", "is not allowed"),
    ("x" * 100, "is 100 characters long"),
    ("y" * 65, "is 65 characters long"),
    ("refund\ttab", "is not allowed"),
    ("-starts with a dash", "is not allowed"),
]
RULE_TEXT = "a tag is letters, digits, spaces and . : / &amp; + # &#x27; - (no commas), 64 characters at most"


@pytest.fixture
def conv(queue, twitter_account):
    conversation = ConversationFactory(queue=queue, channel_account=twitter_account, status="open")
    MessageFactory(conversation=conversation)
    return conversation


def _page_post(client, conv, text: str) -> str:
    resp = client.post(reverse("inbox:tags", args=[conv.pk]), {"tags": text}, follow=True)
    assert resp.status_code == 200
    return resp.content.decode()


@pytest.mark.parametrize("value, why", HOSTILE)
def test_the_page_and_the_api_refuse_the_same_values_with_the_same_message(client, api_client, agent, conv,
                                                                           value, why):
    client.force_login(agent)
    page = _page_post(client, conv, f"billing, {value}")
    api_client.force_authenticate(agent)
    resp = api_client.post(f"/api/v1/conversations/{conv.pk}/tags/", {"add": ["billing", value]}, format="json")

    assert resp.status_code == 400
    [api_message] = resp.json()["detail"]["add"]["1"]
    assert why in api_message and "64 characters at most" in api_message
    # the page says it in the same words, escaped, and keeps nothing (not even the valid "billing")
    assert "Tags not saved: " + html.escape(api_message) in page
    assert RULE_TEXT in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert not conv.tags.exists() and not Tag.objects.exists()
    assert not conv.events.filter(kind="tags_changed").exists()


def test_a_tag_of_64_characters_is_kept_whole_on_both_paths(client, api_client, agent, conv):
    longest = "a" * 63 + "b"
    client.force_login(agent)
    _page_post(client, conv, f"Billing,  late   delivery , {longest},")
    assert sorted(conv.tags.values_list("name", flat=True)) == sorted(["billing", "late delivery", longest])
    api_client.force_authenticate(agent)
    other = "c" * 64
    resp = api_client.post(f"/api/v1/conversations/{conv.pk}/tags/", {"add": [other]}, format="json")
    assert resp.status_code == 200
    assert other in conv.tags.values_list("name", flat=True)


@pytest.mark.parametrize("value, why", HOSTILE[:3])
def test_routing_rules_refuse_the_same_tags_on_the_page_and_the_api(client, api_client, supervisor, value, why):
    client.force_login(supervisor)
    resp = client.post(reverse("routing:rule-new"), {"name": "r", "hours": "any", "visibility": "any",
                                                     "add_tags": f"refund, {value}"})
    assert resp.status_code == 200 and why in resp.content.decode()
    api_client.force_authenticate(supervisor)
    resp = api_client.post("/api/v1/rules/", {"name": "r", "add_tags": ["refund", value]}, format="json")
    assert resp.status_code == 400 and why in str(resp.json()["detail"])
    assert not RoutingRule.objects.exists()
