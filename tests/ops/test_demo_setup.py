"""`manage.py demo_setup` on an empty database: what a new team sees on its first look
(30 days on three channels, hundreds of customers, reopened and failed work, surveys, a
service report with real figures), and a second run adds nothing."""
import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models.functions import TruncDate
from django.urls import reverse

from apps.accounts.models import User
from apps.connectors.models import ChannelAccount
from apps.contacts.models import Customer
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.reports.models import MetricEvent, Survey


def _counts():
    return {"customers": Customer.objects.count(), "conversations": Conversation.objects.count(),
            "messages": Message.objects.count(), "events": ConversationEvent.objects.count(),
            "metrics": MetricEvent.objects.count(), "accounts": ChannelAccount.objects.count(),
            "users": User.objects.count(), "surveys": Survey.objects.count()}


@pytest.mark.django_db(transaction=True)  # the services' after-commit work (sends, routing) must run
def test_demo_looks_like_a_working_team_and_a_second_run_adds_nothing(client):
    call_command("demo_setup", stdout=io.StringIO())
    inbound = Message.objects.filter(direction=Message.Direction.INBOUND)
    days = inbound.annotate(day=TruncDate("sent_at")).values("day").distinct().count()
    assert days >= 30
    assert Customer.objects.count() >= 300
    providers = set(Conversation.objects.values_list("channel_account__provider", flat=True))
    assert {"demo", "email", "mastodon"} <= providers
    # the email and Mastodon accounts are demo accounts: nothing of theirs goes to the internet
    assert all(a.is_simulated for a in ChannelAccount.objects.all())
    assert MetricEvent.objects.filter(kind="reopened").exists()
    failed = Message.objects.filter(send_status=Message.SendStatus.FAILED)
    assert failed.exists()
    assert all("demo network answered" in m.failure_reason for m in failed)
    assert ConversationEvent.objects.filter(kind="reply_retried").exists()  # and retried ones went out
    answered = set(Survey.objects.filter(answered_at__isnull=False).values_list("kind", flat=True))
    assert "csat" in answered and answered & {"ces", "nps"}
    assert MetricEvent.objects.filter(kind="sla_breached").exists()
    assert ConversationEvent.objects.filter(kind="note_added").exists()
    assignees = set(Conversation.objects.exclude(assignee=None).values_list("assignee__username", flat=True))
    assert len(assignees) >= 3
    sentiments = list(inbound.exclude(sentiment=None).values_list("sentiment", flat=True))
    assert any(s > 0.05 for s in sentiments) and any(s < -0.05 for s in sentiments)
    assert not Message.objects.filter(url__contains="demo.invalid").exists()
    # there is work waiting in the inbox
    assert Conversation.objects.filter(status__in=["new", "open", "pending"]).exists()

    client.force_login(User.objects.get(username="admin"))
    end = dt.date.today()
    response = client.get("/api/v1/reports/service/", {"start": (end - dt.timedelta(days=30)).isoformat(),
                                                       "end": end.isoformat()})
    assert response.status_code == 200, response.content[:500]
    totals = response.json()["totals"]
    assert totals["volume_in"] >= 300
    assert totals["opened"] > 0 and totals["resolved"] > 0 and totals["reopened"] > 0
    assert totals["first_response"]["count"] > 0 and totals["first_response"]["median"] > 0
    assert totals["sla_breached"] > 0

    # a demo customer's thread says "Demo customer" instead of linking a profile on a made-up site
    conversation = Conversation.objects.filter(channel_account__provider="mastodon").first()
    page = client.get(reverse("inbox:detail", args=[conversation.pk])).content.decode()
    assert "Demo customer" in page
    assert "demo.invalid" not in page and "View original" not in page

    before = _counts()
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert _counts() == before
    assert "nothing added" in out.getvalue()
