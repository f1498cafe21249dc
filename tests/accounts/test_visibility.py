"""Who sees which conversations (docs/roles.md): agents their teams' queues and what
is assigned to them; supervisors the teams they lead (plus the unrouted, to
triage); admins all; marketing none. Same answer in the inbox, the API and the
supervisor tools, with a bounded number of queries."""
import pytest

from apps.inbox.selectors import conversation_list_for_user, conversations_visible_to
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(team, queue, agent, supervisor, admin_user, marketing_user, twitter_account):
    billing = TeamFactory(name="Billing")
    billing_queue = QueueFactory(team=billing, name="Billing")
    member_sup = UserFactory(role="supervisor")  # member of Care but leads nothing
    team.members.add(member_sup)
    c = {
        "care": ConversationFactory(channel_account=twitter_account, queue=queue),
        "billing": ConversationFactory(channel_account=twitter_account, queue=billing_queue),
        "billing_mine": ConversationFactory(channel_account=twitter_account, queue=billing_queue, assignee=agent),
        "unrouted": ConversationFactory(channel_account=twitter_account, queue=None),
    }
    return {"c": c, "member_sup": member_sup, "users": {
        "agent": agent, "supervisor": supervisor, "admin": admin_user, "marketing": marketing_user}}


def _ids(user, world):
    names = {v.pk: k for k, v in world["c"].items()}
    return {names[pk] for pk in conversations_visible_to(user).values_list("pk", flat=True)}


def test_visibility_by_role(world):
    u = world["users"]
    assert _ids(u["agent"], world) == {"care", "billing_mine"}
    assert _ids(u["supervisor"], world) == {"care", "unrouted"}
    assert _ids(u["admin"], world) == {"care", "billing", "billing_mine", "unrouted"}
    assert _ids(u["marketing"], world) == set()
    assert _ids(world["member_sup"], world) == {"unrouted"}  # a supervisor sees the teams they lead


def test_agent_in_two_teams_sees_both_and_no_duplicates(world, agent, twitter_account):
    TeamFactory(name="Billing2").members.add(agent)
    billing = world["c"]["billing"].queue.team
    billing.members.add(agent)
    ids = list(conversations_visible_to(agent).values_list("pk", flat=True))
    assert len(ids) == len(set(ids)) == 3


def test_inactive_user_sees_nothing(world, agent):
    agent.is_active = False
    assert not conversations_visible_to(agent).exists()


def test_api_and_page_agree_with_the_selector(world, api_client, client, agent):
    api_client.force_authenticate(agent)
    api_ids = {c["id"] for c in api_client.get("/api/v1/conversations/").json()["results"]}
    assert api_ids == {world["c"]["care"].pk, world["c"]["billing_mine"].pk}
    assert api_client.get(f"/api/v1/conversations/{world['c']['billing'].pk}/").status_code == 404
    client.force_login(agent)
    assert client.get(f"/inbox/c/{world['c']['unrouted'].pk}/").status_code == 404


def test_list_query_count_does_not_grow_with_teams(world, agent, django_assert_max_num_queries):
    for i in range(5):
        t = TeamFactory()
        t.members.add(agent)
        QueueFactory(team=t)
    with django_assert_max_num_queries(3):
        list(conversation_list_for_user(user=agent, filters={}))
