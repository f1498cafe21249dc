import datetime as dt

import pytest
from django.utils import timezone

from apps.inbox.models import ConversationEvent
from apps.routing.services import conversation_route
from tests.factories import ConversationFactory, MessageFactory, UserFactory


def events(conversation, kind):
    return list(ConversationEvent.objects.filter(conversation=conversation, kind=kind).order_by("id"))


@pytest.fixture
def mention(twitter_account):
    """mention(text, **conversation fields) -> a routed conversation with one customer message."""

    def make(text="@acme hello", *, followers=0, sent_at=None, route=True, **fields):
        sent_at = sent_at or timezone.now()
        conversation = ConversationFactory(channel_account=twitter_account, cycle_started_at=sent_at,
                                           last_inbound_at=sent_at, identity__followers_count=followers, **fields)
        message = MessageFactory(conversation=conversation, text=text, sent_at=sent_at)
        if route:
            conversation = conversation_route(conversation_id=conversation.pk, message_ids=[message.pk])
            conversation.refresh_from_db()
        return conversation

    return make


@pytest.fixture
def make_agent(team):
    def make(capacity=10, presence="online", **kw):
        user = UserFactory(role="agent", capacity=capacity, presence=presence, **kw)
        team.members.add(user)
        return user

    return make


@pytest.fixture
def minutes_ago():
    return lambda n: timezone.now() - dt.timedelta(minutes=n)


@pytest.fixture
def celery_eager():
    """Tasks run in-process (as a worker would), for service tests that fire them."""
    from cxinbox.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old
