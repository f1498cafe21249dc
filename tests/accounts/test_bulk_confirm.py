"""A bulk move is confirmed first (issue 21: "confirmation before destructive bulk actions"): the
reassign form leads to a page that says how many conversations will change and where they go;
nothing moves until that page's button is pressed. Plain forms: it works without JavaScript."""
import re

import pytest
from django.urls import reverse

from apps.inbox.models import Conversation
from tests.factories import ConversationFactory, QueueFactory, UserFactory

pytestmark = pytest.mark.django_db


def _hidden_fields(html: str) -> list[tuple[str, str]]:
    form = html[html.index('<form method="post" class="row-form">'):]
    form = form[:form.index("</form>")]
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)


def test_moving_all_matching_asks_first_with_the_count_then_moves(client, supervisor, agent, queue, twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0) for _ in range(3)]
    already = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0, assignee=agent)
    ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=3)  # not matched
    client.force_login(supervisor)
    form = {"priority": "0", "status": "new,open,pending", "scope": "all", "to": f"agent:{agent.pk}",
            "reason": "urgent <b>now</b>", "querystring": "priority=0"}
    page = client.post(reverse("supervisor:reassign"), form)
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Move 3 conversations to agent {agent.display_name}?" in html
    assert "1 more is there already and will not change." in html
    assert "Reason (audited): urgent &lt;b&gt;now&lt;/b&gt;" in html and "<b>now</b>" not in html
    assert ">Move 3 conversations</button>" in html
    assert f'href="{reverse("supervisor:reassign")}?priority=0">Cancel</a>' in html
    # nothing moved yet
    assert not Conversation.objects.filter(pk__in=[c.pk for c in convs], assignee=agent).exists()

    fields = _hidden_fields(html)
    assert ("confirmed", "1") in fields and ("csrfmiddlewaretoken", fields[0][1]) not in fields[1:]
    data = {}
    for k, v in fields:
        data.setdefault(k, []).append(v.replace("&lt;", "<").replace("&gt;", ">"))
    page = client.post(reverse("supervisor:reassign"), data, follow=True)
    assert "Moved 3 conversations; 1 was there already." in page.content.decode()
    assert set(Conversation.objects.filter(pk__in=[c.pk for c in convs] + [already.pk])
               .values_list("assignee_id", flat=True)) == {agent.pk}


def test_moving_the_selected_counts_only_those_the_supervisor_can_see(client, supervisor, agent, queue,
                                                                      twitter_account):
    mine = ConversationFactory(channel_account=twitter_account, queue=queue)
    hidden = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())  # another team's queue
    client.force_login(supervisor)
    html = client.post(reverse("supervisor:reassign"), {"ids": [mine.pk, hidden.pk], "to": f"agent:{agent.pk}",
                                                        "reason": "x"}).content.decode()
    assert "Move 1 conversation to agent" in html and ">Move 1 conversation</button>" in html
    assert sorted(v for k, v in _hidden_fields(html) if k == "ids") == sorted([str(mine.pk), str(hidden.pk)])
    mine.refresh_from_db()
    assert mine.assignee_id is None


def test_a_refused_target_is_said_before_the_confirmation(client, supervisor, queue, twitter_account):
    ConversationFactory(channel_account=twitter_account, queue=queue)
    stranger = UserFactory(role="agent")  # in no team the supervisor leads
    client.force_login(supervisor)
    page = client.post(reverse("supervisor:reassign"), {"scope": "all", "to": f"agent:{stranger.pk}",
                                                        "reason": "x"}, follow=True)
    html = page.content.decode()
    assert "is not in a team you lead" in html and "Confirm the move" not in html
