"""The demo network refuses a share of replies (DEMO_NETWORK_FAILURE_RATE), as a real network
does: with the rate at 1 every post is refused (a 429 with Retry-After, or a 500) and the
reply ends failed with that answer once the send task gives up; at 0 it is sent."""
import pytest
from celery.exceptions import Retry
from django.urls import reverse

from apps.core.task_queue import task_named
from apps.inbox import services as inbox
from apps.inbox.models import Message
from tests.factories import ChannelAccountFactory, ConversationFactory


@pytest.fixture
def demo_conversation(db, agent, queue):
    account = ChannelAccountFactory(provider="demo", handle="@acme-demo")
    return ConversationFactory(channel_account=account, queue=queue)


@pytest.mark.django_db(transaction=True)
def test_rate_one_fails_the_reply_with_the_networks_answer(settings, eager_celery, demo_conversation, agent,
                                                          client):
    settings.DEMO_NETWORK_FAILURE_RATE = 1.0
    with pytest.raises(Retry):  # eager Celery raises the task's retry where a worker would queue it
        inbox.reply_create(conversation=demo_conversation, agent=agent, text="Sorry, checking now.")
    reply = Message.objects.filter(conversation=demo_conversation, direction="out").get()
    assert reply.send_status == Message.SendStatus.QUEUED
    assert "429 Too Many Requests" in reply.failure_reason or "500 Internal Server Error" in reply.failure_reason
    assert reply.next_attempt_at is not None  # waits for Retry-After / the backoff, shown in the thread

    task = task_named("outbound.send_message")
    task.apply(args=(reply.pk,), retries=task.max_retries)  # the last try: it gives up
    reply.refresh_from_db()
    assert reply.send_status == Message.SendStatus.FAILED
    assert "The demo network answered" in reply.failure_reason

    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[demo_conversation.pk])).content.decode()
    assert "Not sent:" in page and "Try again" in page and "The demo network answered" in page


@pytest.mark.django_db(transaction=True)
def test_rate_zero_sends(settings, eager_celery, demo_conversation, agent):
    settings.DEMO_NETWORK_FAILURE_RATE = 0.0
    inbox.reply_create(conversation=demo_conversation, agent=agent, text="Sorry, checking now.")
    reply = Message.objects.filter(conversation=demo_conversation, direction="out").get()
    assert reply.send_status == Message.SendStatus.SENT
    assert reply.url == ""  # a simulated post has no page to link to


def test_tests_run_with_no_refusals(settings):
    assert settings.DEMO_NETWORK_FAILURE_RATE == 0.0
