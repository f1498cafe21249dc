"""Ingest: idempotent storage, threading, reopen, cursor after commit."""
from unittest import mock

import pytest
from django.utils import timezone

from apps.connectors.providers.base import InboundMention, TransientError
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.inbox.services import conversation_status_set
from apps.ingest.polling import account_poll
from apps.ingest.services import mentions_ingest

pytestmark = pytest.mark.django_db


def mention(ext, text="@acme help", author="42", handle="bob", reply_to="", thread=""):
    return InboundMention(external_id=ext, text=text, created_at=timezone.now(), author_external_id=author,
                          author_handle=handle, author_name="Bob", author_followers=7,
                          thread_id=thread or ext, in_reply_to_external_id=reply_to)


def test_same_mention_twice_is_stored_once(twitter_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        first = mentions_ingest(account=twitter_account, mentions=[mention("1"), mention("1")])
        second = mentions_ingest(account=twitter_account, mentions=[mention("1")])
    assert len(first.created_message_ids) == 1 and first.duplicates == 1
    assert second.created_message_ids == [] and second.duplicates == 1
    assert Message.objects.count() == 1 and Conversation.objects.count() == 1


def test_reply_chain_threads_into_one_conversation(twitter_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[mention("1")])
        mentions_ingest(account=twitter_account, mentions=[mention("2", reply_to="1", thread="1")])
    assert Conversation.objects.count() == 1
    conv = Conversation.objects.get()
    assert conv.messages.count() == 2 and conv.external_thread_id == "1"
    assert conv.identity.handle == "bob" and conv.customer.name == "Bob"


def test_different_customers_get_different_conversations(twitter_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[mention("1"), mention("2", author="43", handle="eve")])
    assert Conversation.objects.count() == 2


def test_new_message_reopens_a_resolved_conversation(twitter_account, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[mention("1")])
        conv = Conversation.objects.get()
        conv.assignee = agent
        conv.save()
        conversation_status_set(conversation=conv, status="resolved", actor=agent)
        mentions_ingest(account=twitter_account, mentions=[mention("2", reply_to="1", thread="1")])
    conv.refresh_from_db()
    assert conv.status == "open" and conv.resolved_at is None
    assert conv.last_assignee == agent  # routing may hand it back to them
    assert ConversationEvent.objects.filter(conversation=conv, kind="reopened").exists()


def test_closed_conversation_stays_closed_new_one_starts(twitter_account, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[mention("1")])
        conversation_status_set(conversation=Conversation.objects.get(), status="closed", actor=agent)
        mentions_ingest(account=twitter_account, mentions=[mention("2", reply_to="1", thread="1")])
    assert list(Conversation.objects.order_by("id").values_list("status", flat=True)) == ["closed", "new"]


def test_routing_is_fired_only_after_commit(twitter_account, django_capture_on_commit_callbacks):
    with mock.patch("apps.routing.tasks.conversation_route_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            mentions_ingest(account=twitter_account, mentions=[mention("1")])
        delay.assert_not_called()
        for cb in callbacks:
            cb()
    conv = Conversation.objects.get()
    delay.assert_called_once_with(conv.pk, [conv.messages.get().pk])


def test_poll_advances_cursor_after_storing(twitter_api, twitter_account, django_capture_on_commit_callbacks):
    twitter_api.add_user("11", "alice")
    tweets = [twitter_api.add_mention(f"@acme {i}", author_id="11") for i in range(3)]
    with django_capture_on_commit_callbacks():
        result = account_poll(account=twitter_account)
    twitter_account.refresh_from_db()
    assert len(result.created_message_ids) == 3
    assert twitter_account.poll_cursor == {"since_id": tweets[-1]["id"]}
    assert twitter_account.last_error == "" and twitter_account.last_success_at is not None


def test_a_poll_that_raced_another_never_sets_the_cursor_back(twitter_api, twitter_account,
                                                              django_capture_on_commit_callbacks):
    from apps.connectors.models import ChannelAccount

    twitter_api.add_user("11", "alice")
    twitter_api.add_mention("@acme 1", author_id="11")
    later = twitter_api.add_mention("@acme 2", author_id="11")
    stale = ChannelAccount.objects.get(pk=twitter_account.pk)  # a second poll, started at the same cursor
    with django_capture_on_commit_callbacks():
        account_poll(account=twitter_account)  # the cursor is at the newest mention
        # the racing poll fetched before mention 2 arrived, and finishes last
        twitter_api.mention_ids.remove(int(later["id"]))
        account_poll(account=stale)
    twitter_account.refresh_from_db()
    assert twitter_account.poll_cursor == {"since_id": later["id"]}
    assert Message.objects.count() == 2


def test_crash_while_storing_keeps_cursor_and_refetch_loses_nothing(twitter_api, twitter_account,
                                                                      django_capture_on_commit_callbacks):
    twitter_api.add_user("11", "alice")
    for i in range(3):
        twitter_api.add_mention(f"@acme {i}", author_id="11")
    with mock.patch("apps.ingest.services._mentions_store", side_effect=RuntimeError("worker died")):
        with pytest.raises(RuntimeError):
            account_poll(account=twitter_account)
    twitter_account.refresh_from_db()
    assert twitter_account.poll_cursor == {} and Message.objects.count() == 0
    with django_capture_on_commit_callbacks():
        account_poll(account=twitter_account)
    assert Message.objects.count() == 3


def test_provider_error_is_recorded_on_the_account_with_backoff(twitter_api, twitter_account):
    twitter_api.add_fault("GET", "/2/users/", status=401)
    with pytest.raises(Exception):
        account_poll(account=twitter_account)
    twitter_account.refresh_from_db()
    assert "401" in twitter_account.last_error
    assert twitter_account.consecutive_errors == 1
    assert twitter_account.next_poll_at > timezone.now()


def test_malformed_page_is_refused_and_nothing_is_lost(twitter_api, twitter_account,
                                                       django_capture_on_commit_callbacks):
    twitter_api.add_user("11", "alice")
    twitter_api.add_mention("@acme hi", author_id="11")
    twitter_api.add_fault("GET", "/2/users/", status=200, body=b"<html>oops</html>")
    with pytest.raises(TransientError):
        account_poll(account=twitter_account)
    twitter_account.refresh_from_db()
    assert "malformed" in twitter_account.last_error and twitter_account.poll_cursor == {}
    with django_capture_on_commit_callbacks():
        account_poll(account=twitter_account)
    assert Message.objects.count() == 1


def test_polls_queued_behind_a_failed_one_do_not_escalate_the_backoff(twitter_api, twitter_account):
    from apps.connectors.models import ChannelAccount
    from apps.ingest.tasks import account_poll_task

    twitter_api.add_fault("GET", "/2/users/", status=500, remaining=3)
    for _ in range(3):  # three polls were already queued when the network failed
        account_poll_task.apply(args=[twitter_account.pk])
    account = ChannelAccount.objects.get(pk=twitter_account.pk)
    assert account.consecutive_errors == 1 and len(twitter_api.requests) == 1
    assert (account.next_poll_at - timezone.now()).total_seconds() <= 5.1  # the first step (2.5-5 s), not 20 s
