"""Bad parameters are the client's error, never the server's: NUL bytes, impossible
dates, year 9999, huge numbers, non-numeric ids and deeply nested JSON answer a
clear 4xx (JSON {"detail": ...} under /api/) or are ignored on a page: never a 500,
never a hang. Over HTTP, as an authorised user, on PostgreSQL (issue 18)."""
import time

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

REPORTS = ["service", "experience", "marketing", "gap"]
NESTED = "[" * 3000 + "]" * 3000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000


@pytest.fixture
def world(db):
    team = TeamFactory()
    queue = QueueFactory(team=team, is_default=True)
    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    supervisor = UserFactory(role="supervisor")
    agent = UserFactory(role="agent")
    team.members.add(agent, supervisor)
    team.leads.add(supervisor)
    conversation = ConversationFactory(queue=queue)
    MessageFactory(conversation=conversation)
    return {"admin": admin, "supervisor": supervisor, "agent": agent, "queue": queue,
            "conversation": conversation}


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _assert_api_400(response):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert response.json().get("detail"), response.json()


API_GETS = [
    "/api/v1/conversations/?q=%00",
    "/api/v1/conversations/?q=a%00b",
    "/api/v1/conversations/?channel=%00",
    "/api/v1/conversations/?tag=%00",
    "/api/v1/conversations/?status=%00",
    "/api/v1/conversations/?queue=99999999999999999999",
    "/api/v1/conversations/?assignee=abc",
    "/api/v1/conversations/?priority=9",
    "/api/v1/conversations/?sentiment=great",
    "/api/v1/conversations/?status=%25s%25d%25(x)s",
    "/api/v1/conversations/?date_from=%25s%25(x)s",
    "/api/v1/conversations/?date_from=2024-02-31",
    "/api/v1/conversations/?date_to=9999-12-31",
    "/api/v1/conversations/?view=%00",
    "/api/v1/conversations/?cursor=%00",
    "/api/v1/customers/?cursor=abc",
    "/api/v1/audit/?since=2024-02-31",
    "/api/v1/audit/?until=2024-02-31",
    "/api/v1/audit/?since=9999-12-31",
    "/api/v1/audit/?before=0001-01-01T00:00:00%2B14:00",
    "/api/v1/audit/?actor=%00",
    "/api/v1/audit/?action=%00",
    "/api/v1/audit/?conversation=99999999999999999999",
    *[f"/api/v1/reports/{name}/?end=9999-12-31" for name in REPORTS],
    *[f"/api/v1/reports/{name}/?start=0001-01-01&end=0001-01-02" for name in REPORTS],
    "/api/v1/reports/service/?queue=99999999999999999999",
    "/api/v1/reports/service/?channel=%00",
    "/api/v1/reports/service/?tz=%00",
    "/api/v1/reports/service/?tz=" + "a" * 300,
    "/api/v1/reports/service/?tz=Europe/Nowhere",
    "/api/v1/reports/service/?agent=abc",
]


@pytest.mark.parametrize("url", API_GETS)
def test_api_get_bad_parameter_is_a_400(world, url):
    _assert_api_400(_api(world["admin"]).get(url))


def test_audit_csv_with_an_impossible_date_answers_at_once(world):
    for client, url in ((_api(world["admin"]), "/api/v1/audit/?format=csv&since=2024-02-31"),
                        (_page(world["supervisor"]), "/supervisor/audit/?format=csv&since=2024-02-31")):
        started = time.monotonic()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert time.monotonic() - started < 3
        assert response.status_code == 400, (url, response.status_code, body[:200])


PAGE_GETS = [
    "/inbox/?q=%00",
    "/inbox/?page=99999999999999999999",
    "/inbox/?page=-5",
    "/inbox/?queue=99999999999999999999",
    "/inbox/?date_from=2024-02-31&date_to=9999-12-31",
    "/inbox/?channel=%00&tag=%00",
    "/supervisor/reassign/?q=%00",
    "/supervisor/reassign/?page=99999999999999999999",
    "/supervisor/reassign/?assignee=99999999999999999999",
    "/supervisor/audit/?since=2024-02-31",
    "/supervisor/audit/?until=9999-12-31",
    "/supervisor/audit/?actor=%00",
    "/supervisor/audit/?conversation=99999999999999999999",
    *[f"/reports/{name}/?end=9999-12-31" for name in REPORTS],
    *[f"/reports/{name}/?end=9999-12-31&format=csv" for name in REPORTS],
    "/reports/service/?agent=99999999999999999999",
    "/reports/service/?tz=" + "a" * 300,
]


@pytest.mark.parametrize("url", PAGE_GETS)
def test_page_with_bad_parameter_is_not_a_server_error(world, url):
    response = _page(world["admin"]).get(url)
    assert response.status_code < 500, (url, response.status_code)
    if response.status_code != 400:
        assert response.status_code == 200


@pytest.mark.parametrize("path", ["capacity", "workload"])
def test_user_action_with_a_non_numeric_id_is_a_client_error(world, path):
    response = _api(world["supervisor"]).post(f"/api/v1/users/abc/{path}/", {"capacity": 3}, format="json")
    assert response.status_code == 404 and response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/v1/users/abc/", "/api/v1/teams/abc/", "/api/v1/queues/abc/",
                                 "/api/v1/rules/abc/", "/api/v1/customers/abc/", "/api/v1/conversations/abc/",
                                 "/api/v1/conversations/99999999999999999999/",
                                 "/api/v1/users/99999999999999999999/", "/api/v1/channel-accounts/abc/"])
def test_object_with_a_bad_id_is_a_404(world, url):
    response = _api(world["admin"]).get(url)
    assert response.status_code == 404 and response.json()["detail"]


@pytest.mark.parametrize("key", ["tw\u0000itter", "x" * 200, ""])
def test_capacity_with_a_bad_channel_key_is_a_400(world, key):
    response = _api(world["supervisor"]).post(f"/api/v1/users/{world['agent'].pk}/capacity/",
                                              {"capacity": 3, "channel_capacity": {key: 2}}, format="json")
    _assert_api_400(response)


def test_capacity_page_with_a_nul_channel_is_refused(world):
    response = _page(world["supervisor"]).post(f"/supervisor/agents/{world['agent'].pk}/capacity/",
                                               {"capacity": "4", "channel_capacity": "twi\u0000tter=2"})
    assert response.status_code < 500
    world["agent"].refresh_from_db()
    assert "\u0000" not in str(world["agent"].channel_capacity)


JSON_POSTS = [
    "/api/v1/conversations/{c}/reply/", "/api/v1/conversations/{c}/assign/", "/api/v1/conversations/{c}/status/",
    "/api/v1/conversations/{c}/notes/", "/api/v1/conversations/{c}/tags/", "/api/v1/conversations/bulk-assign/",
    "/api/v1/users/{a}/capacity/", "/api/v1/users/me/presence/", "/api/v1/teams/", "/api/v1/tokens/",
    "/api/v1/rules/", "/api/v1/queues/", "/api/v1/canned-responses/", "/api/v1/sla-policies/",
    "/api/v1/channel-accounts/",
]


@pytest.mark.parametrize("body", [NESTED, DEEP_OBJECT, "{\"a\": \"\\ud800\\u0000", "\xff\xfe", "NaN"])
@pytest.mark.parametrize("url", JSON_POSTS)
def test_hostile_json_body_is_a_400(world, url, body):
    url = url.format(c=world["conversation"].pk, a=world["agent"].pk)
    response = _api(world["admin"]).generic("POST", url, body.encode("utf-8", "surrogatepass"),
                                            content_type="application/json")
    _assert_api_400(response)


def test_team_with_an_impossible_time_zone_is_a_400(world):
    _assert_api_400(_api(world["admin"]).post("/api/v1/teams/", {"name": "Night", "time_zone": "a" * 300},
                                              format="json"))


def test_snooze_page_with_an_impossible_time_is_refused(world):
    client = _page(world["admin"])
    for until in ("2024-02-31T10:00", "9999-12-31T23:59"):
        response = client.post(f"/inbox/c/{world['conversation'].pk}/snooze/", {"until": until})
        assert response.status_code < 500, until
    world["conversation"].refresh_from_db()
    assert world["conversation"].snoozed_until is None


def test_bulk_assign_page_ignores_a_nul_in_the_filter(world):
    response = _page(world["supervisor"]).post("/supervisor/reassign/", {
        "scope": "all", "q": "a\u0000b", "to": f"queue:{world['queue'].pk}", "reason": "x"})
    assert response.status_code < 500


@pytest.mark.parametrize("number", ["\u00b2", "99999999999999999999"])
def test_page_forms_with_odd_numbers_are_not_server_errors(world, number):
    client = _page(world["supervisor"])
    assert client.post("/supervisor/reassign/", {"ids": [number], "to": f"queue:{number}"}).status_code < 500
    assert client.post("/supervisor/reassign/", {"ids": [number], "to": f"queue:{world['queue'].pk}"}
                       ).status_code < 500
    assert client.get(f"/inbox/?view=queue&queue={number}").status_code == 200


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2024-02-31T10:00:00Z",
                                   "99999-01-01T00:00:00Z"])
def test_snooze_api_with_an_impossible_time_is_a_400(world, until):
    response = _api(world["admin"]).post(f"/api/v1/conversations/{world['conversation'].pk}/snooze/",
                                         {"until": until}, format="json")
    _assert_api_400(response)


def test_oversized_json_body_is_a_413(world, settings):
    body = '{"text": "' + "a" * (3 * 1024 * 1024) + '"}'
    response = _api(world["admin"]).generic("POST", f"/api/v1/conversations/{world['conversation'].pk}/notes/",
                                            body, content_type="application/json")
    assert response.status_code == 413 and response.json()["detail"]
