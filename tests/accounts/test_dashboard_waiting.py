"""The supervisor dashboard's "Waiting for a reply": open conversations whose customer has had no
reply from a person since they last wrote, whoever they are assigned to; "Unassigned" is its
own figure. Issue 21: the dashboard said "Waiting 0" while 11 assigned conversations had no reply."""
import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _ago(minutes):
    return timezone.now() - dt.timedelta(minutes=minutes)


def _kpi(html: str, name: str) -> int:
    return int(re.search(rf'data-kpi="{name}">(\d+)<', html).group(1))


def test_waiting_counts_unanswered_conversations_and_unassigned_is_its_own_figure(client, supervisor, agent, queue,
                                                                                 twitter_account):
    def conv(**kw):
        return ConversationFactory(channel_account=twitter_account, queue=queue, **kw)

    # 11 assigned, open conversations whose customer wrote last: all waiting, none unassigned
    for i in range(11):
        MessageFactory(conversation=conv(status="open", assignee=agent), sent_at=_ago(10 + i))
    # answered by the agent after the customer's message: not waiting
    answered = conv(status="open", assignee=agent)
    MessageFactory(conversation=answered, sent_at=_ago(30))
    MessageFactory(conversation=answered, direction="out", external_id=None, author_user=agent, author_identity=None,
                   send_status="sent", sent_at=_ago(20))
    # only a bot replied, and an agent's reply failed: the customer still waits (since 90 min)
    botted = conv(status="open", assignee=agent)
    MessageFactory(conversation=botted, sent_at=_ago(90))
    MessageFactory(conversation=botted, direction="out", external_id=None, is_bot=True, author_identity=None,
                   send_status="sent", sent_at=_ago(89))
    MessageFactory(conversation=botted, direction="out", external_id=None, author_user=agent, author_identity=None,
                   send_status="failed", sent_at=_ago(88))
    # replied, then the customer wrote again twice: waiting since the first of those (50 min)
    again = conv(status="open", assignee=agent)
    MessageFactory(conversation=again, sent_at=_ago(70))
    MessageFactory(conversation=again, direction="out", external_id=None, author_user=agent, author_identity=None,
                   send_status="sent", sent_at=_ago(60))
    MessageFactory(conversation=again, sent_at=_ago(50))
    MessageFactory(conversation=again, sent_at=_ago(40))
    # two unassigned: one new and unanswered (waiting too), one answered
    MessageFactory(conversation=conv(status="new"), sent_at=_ago(5))
    answered_unassigned = conv(status="open")
    MessageFactory(conversation=answered_unassigned, sent_at=_ago(30))
    MessageFactory(conversation=answered_unassigned, direction="out", external_id=None, author_user=agent,
                   author_identity=None, send_status="queued", sent_at=_ago(1))
    # pending (waiting on the customer), resolved and spam: not counted
    MessageFactory(conversation=conv(status="pending", assignee=agent), sent_at=_ago(500))
    MessageFactory(conversation=conv(status="resolved", assignee=agent), sent_at=_ago(500))
    MessageFactory(conversation=conv(status="open", is_spam=True), sent_at=_ago(500))

    client.force_login(supervisor)
    html = client.get(reverse("supervisor:dashboard")).content.decode()
    assert "Waiting for a reply" in html and ">Unassigned<" in html
    assert _kpi(html, "waiting") == 11 + 2 + 1
    assert _kpi(html, "unassigned") == 2
    row = re.search(rf'<tr data-queue="{queue.name}">.*?</tr>', html, re.S).group(0)
    assert re.search(r'data-col="waiting">14<', row) and re.search(r'data-col="unassigned">2<', row)
    assert "1\xa0hour, 30\xa0minutes" in row  # the bot's and the failed reply do not end the wait

    live = client.get(reverse("supervisor:dashboard-live")).content.decode()
    assert _kpi(live, "waiting") == 14 and _kpi(live, "unassigned") == 2
