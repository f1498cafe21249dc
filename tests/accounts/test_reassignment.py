"""Reassignment by supervisors: single, bulk (picked or all matching a filter), and
an agent's whole workload; every move audited with who, when and why."""
import pytest
from django.core.exceptions import PermissionDenied

from apps.accounts.models import AuditEntry, Presence
from apps.core.errors import DomainError
from apps.inbox.models import ConversationEvent
from apps.inbox.reassignment import agent_workload_move, conversation_move, conversations_bulk_assign
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_agent(team):
    user = UserFactory(role="agent")
    team.members.add(user)
    return user


def test_bulk_assign_picked_conversations_to_an_agent_audits_each(supervisor, agent, other_agent, queue,
                                                                   twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent) for _ in range(3)]
    untouched = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent)
    result = conversations_bulk_assign(conversations=convs[:2] + [convs[2].pk], to_agent=other_agent,
                                       actor=supervisor, reason="Dana is on lunch")
    assert result["moved"] == 3
    for c in convs:
        c.refresh_from_db()
        assert c.assignee == other_agent
        event = ConversationEvent.objects.get(conversation=c, kind="assigned")
        assert event.actor == supervisor and event.data["reason"] == "Dana is on lunch"
        assert event.data["from"] == agent.username and event.data["to"] == other_agent.username
    untouched.refresh_from_db()
    assert untouched.assignee == agent
    assert AuditEntry.objects.get(action="conversations.bulk_moved").data["moved"] == 3


def test_bulk_move_all_matching_a_filter_to_a_queue(supervisor, agent, queue, twitter_account):
    escalations = QueueFactory(team=queue.team, name="Escalations")
    urgent = [ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0) for _ in range(2)]
    normal = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=2)
    result = conversations_bulk_assign(filters={"priority": "0"}, to_queue=escalations, actor=supervisor,
                                       reason="urgent go to escalations")
    assert result == {"matched": 2, "moved": 2, "unchanged": 0, "not_visible": 0}
    assert {c.pk for c in escalations.conversations.all()} == {c.pk for c in urgent}
    normal.refresh_from_db()
    assert normal.queue == queue
    event = ConversationEvent.objects.filter(kind="moved").first()
    assert event.data["from_queue"] == queue.name and event.data["to_queue"] == "Escalations"
    assert event.actor == supervisor and event.data["reason"] == "urgent go to escalations"


def test_move_to_another_team_unassigns_and_keeps_assignee_within_team(supervisor, agent, queue,
                                                                       twitter_account):
    same_team_queue = QueueFactory(team=queue.team)
    billing = TeamFactory(name="Billing")
    billing_queue = QueueFactory(team=billing, name="Billing", is_default=True)
    stay = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent)
    leave = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent)
    conversation_move(conversation=stay, queue=same_team_queue, actor=supervisor, reason="tidy")
    conversations_bulk_assign(conversations=[leave], to_team=billing, actor=supervisor, reason="billing question")
    stay.refresh_from_db(), leave.refresh_from_db()
    assert stay.assignee == agent and stay.queue == same_team_queue
    assert leave.assignee is None and leave.queue == billing_queue
    event = ConversationEvent.objects.get(conversation=leave, kind="moved")
    assert event.data["from"] == agent.username and event.data["to"] is None


def test_supervisor_moves_only_what_they_can_see_and_agents_cannot_bulk_move(supervisor, agent, queue,
                                                                            twitter_account):
    foreign = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())  # a team they don't lead
    mine = ConversationFactory(channel_account=twitter_account, queue=queue)
    result = conversations_bulk_assign(conversations=[foreign, mine], to_agent=agent, actor=supervisor)
    assert result["moved"] == 1 and result["not_visible"] == 1
    foreign.refresh_from_db()
    assert foreign.assignee is None
    with pytest.raises(PermissionDenied):
        conversations_bulk_assign(conversations=[mine], to_agent=supervisor, actor=agent)


def test_supervisor_cannot_hand_work_to_an_agent_outside_their_teams(supervisor, queue, twitter_account):
    stranger = UserFactory(role="agent")
    TeamFactory().members.add(stranger)
    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    with pytest.raises(DomainError, match="not in a team you lead"):
        conversations_bulk_assign(conversations=[conv], to_agent=stranger, actor=supervisor)


def test_bulk_needs_exactly_one_target(supervisor, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    with pytest.raises(DomainError, match="Pick one target"):
        conversations_bulk_assign(conversations=[conv], to_agent=agent, to_queue=queue, actor=supervisor)


def test_agent_off_shift_workload_moves_to_colleague_and_agent_goes_offline(supervisor, agent, other_agent,
                                                                           queue, twitter_account):
    open_ones = [ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status=s)
                 for s in ("new", "open", "pending")]
    resolved = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="resolved")
    result = agent_workload_move(agent=agent, to=other_agent, actor=supervisor, reason="end of shift",
                                 go_offline=True)
    assert result["moved"] == 3
    for c in open_ones:
        c.refresh_from_db()
        assert c.assignee == other_agent
        assert ConversationEvent.objects.get(conversation=c, kind="assigned").data["reason"] == "end of shift"
    resolved.refresh_from_db()
    assert resolved.assignee == agent  # history stays with who resolved it
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE and agent.presence_manual
    assert AuditEntry.objects.filter(action="agent.workload_moved", target=agent.username).exists()


def test_workload_back_to_queue_unassigns(supervisor, agent, queue, twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent) for _ in range(2)]
    result = agent_workload_move(agent=agent, to=None, actor=supervisor, reason="sick")
    assert result["moved"] == 2
    for c in convs:
        c.refresh_from_db()
        assert c.assignee is None and c.queue == queue
        assert ConversationEvent.objects.get(conversation=c, kind="unassigned").data["reason"] == "sick"


def test_bulk_assign_query_count_grows_per_conversation_not_worse(supervisor, agent, queue, twitter_account,
                                                                  django_assert_max_num_queries):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue) for _ in range(10)]
    with django_assert_max_num_queries(10 * 8 + 12):
        conversations_bulk_assign(conversations=convs, to_agent=agent, actor=supervisor)


def test_large_bulk_move_runs_in_the_background_task(client, supervisor, agent, queue, twitter_account,
                                                     monkeypatch, celery_eager, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from apps.inbox import reassignment
    from apps.inbox.models import Conversation

    monkeypatch.setattr(reassignment, "BULK_SYNC_MAX", 2)
    monkeypatch.setattr("apps.inbox.tasks.BULK_CHUNK", 2)
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue) for _ in range(5)]
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("supervisor:reassign"), {"scope": "all", "to": f"agent:{agent.pk}",
                                                           "reason": "big move", "confirmed": "1"}, follow=True)
    assert "Moving 5 conversations in the background" in resp.content.decode()
    assert set(Conversation.objects.filter(pk__in=[c.pk for c in convs]).values_list("assignee_id", flat=True)) == {
        agent.pk}
    assert ConversationEvent.objects.filter(kind="assigned", data__reason="big move").count() == 5
