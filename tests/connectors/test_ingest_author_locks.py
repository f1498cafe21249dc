"""An ingest batch does not wait whole on another ingest holding one of its
authors: the other authors' mentions are stored (and committed) at once; the
held author's, and replies to them in the batch, once the holder commits,
threaded as a single pass would thread them (docs/performance-history.md item 25)."""
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.contacts.models import Customer, SocialIdentity
from apps.inbox.models import Message
from apps.ingest.services import mentions_ingest

pytestmark = pytest.mark.django_db(transaction=True)


def mention(ext, author, handle, reply_to="", thread=""):
    return InboundMention(external_id=ext, text=f"@acme help {ext}", created_at=timezone.now(),
                          author_external_id=author, author_handle=handle, author_name=handle,
                          thread_id=thread or ext, in_reply_to_external_id=reply_to)


def _in_thread(fn):
    def run():
        try:
            fn()
        finally:
            connections.close_all()  # this thread's connection
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _stored(*ids) -> set[str]:
    return set(Message.objects.filter(external_id__in=ids).values_list("external_id", flat=True))


def _bob_held(account):
    """Bob (who has written before) held by another transaction, as another ingest
    threading one of his mentions does. Returns (its thread, the event that ends it)."""
    mentions_ingest(account=account, mentions=[mention("1", "42", "bob")])
    bob = SocialIdentity.objects.get(external_id="42")
    held, release = threading.Event(), threading.Event()

    def hold_bob():
        with transaction.atomic():
            SocialIdentity.objects.select_for_update().get(pk=bob.pk)
            held.set()
            release.wait(15)

    holder = _in_thread(hold_bob)
    assert held.wait(5)
    return holder, release


def test_other_authors_are_stored_while_one_author_is_held(twitter_account):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    holder, release = _bob_held(twitter_account)
    batch = [mention("2", "43", "eve"), mention("3", "42", "bob", reply_to="1", thread="1"),
             mention("4", "44", "ann", reply_to="3", thread="1"), mention("5", "45", "joe")]
    results = []
    worker = _in_thread(lambda: results.append(mentions_ingest(account=twitter_account, mentions=batch)))
    deadline = time.time() + 10
    while time.time() < deadline and _stored("2", "5") != {"2", "5"}:
        time.sleep(0.05)
    # eve's and joe's are committed while bob is held; bob's reply, and ann's reply to it, wait
    assert _stored("2", "3", "4", "5") == {"2", "5"}
    release.set()
    holder.join(10)
    worker.join(15)
    assert not worker.is_alive()
    assert _stored("3", "4") == {"3", "4"}
    bobs = Message.objects.get(external_id="1").conversation_id
    assert set(Message.objects.filter(conversation_id=bobs).values_list("external_id", flat=True)) == {"1", "3", "4"}
    assert Message.objects.get(external_id="2").conversation_id != Message.objects.get(external_id="5").conversation_id
    assert len(results[0].created_message_ids) == 4 and results[0].duplicates == 0


def test_a_batch_inside_a_callers_transaction_waits_for_its_authors(twitter_account):
    """Push deliveries ingest inside their own transaction: one waiting pass (a
    first pass's locks would be held while a second waited)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    holder, release = _bob_held(twitter_account)

    def ingest_in_transaction():
        with transaction.atomic():
            mentions_ingest(account=twitter_account, mentions=[mention("2", "43", "eve"), mention("3", "42", "bob")])

    worker = _in_thread(ingest_in_transaction)
    time.sleep(1.0)
    assert _stored("2", "3") == set()  # nothing committed while bob is held
    release.set()
    holder.join(10)
    worker.join(15)
    assert _stored("2", "3") == {"2", "3"}


def test_a_new_author_another_ingest_is_creating_does_not_hold_up_the_batch(twitter_account):
    """Another ingest inserting the same new customer, not committed yet: the
    batch's INSERT would wait inside the unique index for it. The new author is
    claimed first instead (an advisory lock per provider and id), and what another
    ingest claims waits for a second pass like a held author."""
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    claimed, release = threading.Event(), threading.Event()

    def claim_new_author():  # another ingest: claimed and inserted the author, not committed yet
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('identity:' || %s || ':' || %s, 0))",
                               [twitter_account.provider, "46"])
            customer = Customer.objects.create(name="new")
            SocialIdentity.objects.create(customer=customer, provider=twitter_account.provider, external_id="46",
                                          handle="new")
            claimed.set()
            release.wait(15)

    other = _in_thread(claim_new_author)
    assert claimed.wait(5)
    batch = [mention("6", "46", "new"), mention("7", "47", "kim")]
    worker = _in_thread(lambda: mentions_ingest(account=twitter_account, mentions=batch))
    deadline = time.time() + 10
    while time.time() < deadline and not _stored("7"):
        time.sleep(0.05)
    assert _stored("6", "7") == {"7"}  # kim's is in; the new author's waits for the claim
    release.set()
    other.join(10)
    worker.join(15)
    assert _stored("6", "7") == {"6", "7"}
    assert SocialIdentity.objects.filter(external_id="46").count() == 1


def test_push_deliveries_of_other_authors_are_done_while_one_author_is_held(twitter_account):
    """Push deliveries ingest inside their delivery's transaction. Those of free
    authors are stored and marked done at once; a delivery whose author another
    ingest holds stays pending until a second transaction, which waits for that
    author alone, stores it (4 worker processes no longer wait whole on each other)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from apps.connectors.models import PushDelivery
    from apps.connectors.providers.base import mention_to_dict
    from apps.ingest.push import push_delivery_ingest

    holder, release = _bob_held(twitter_account)
    eve, bobs, joe = (PushDelivery.objects.create(account=twitter_account, mentions=[mention_to_dict(m)]) for m in (
        mention("2", "43", "eve"), mention("3", "42", "bob", reply_to="1", thread="1"), mention("4", "45", "joe")))
    worker = _in_thread(lambda: push_delivery_ingest(delivery_id=eve.pk))
    deadline = time.time() + 10
    while time.time() < deadline and _stored("2", "4") != {"2", "4"}:
        time.sleep(0.05)
    assert _stored("2", "3", "4") == {"2", "4"}
    status = dict(PushDelivery.objects.values_list("pk", "status"))
    assert (status[eve.pk], status[bobs.pk], status[joe.pk]) == ("done", "pending", "done")
    release.set()
    holder.join(10)
    worker.join(15)
    assert not worker.is_alive()
    assert PushDelivery.objects.get(pk=bobs.pk).status == "done"
    assert Message.objects.get(external_id="3").conversation_id == Message.objects.get(external_id="1").conversation_id


def test_a_conversation_a_router_holds_does_not_hold_up_the_batch(twitter_account):
    """A router holds the conversations of the batch it routes until it commits.
    A returning customer's mention into one of them waits for that commit alone:
    the batch's other mentions are stored at once. The held mention is threaded on
    what the router committed, not on what was read before: here the router set
    the conversation to pending, so the customer's answer reopens it (pending ->
    open, with its event) rather than writing back the status read earlier."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from apps.inbox.models import Conversation, ConversationEvent, Status

    mentions_ingest(account=twitter_account, mentions=[mention("1", "42", "bob")])
    bobs = Message.objects.get(external_id="1").conversation_id
    held, release = threading.Event(), threading.Event()

    def route_bobs():  # as _route_batch does: the row locked from the start of its transaction to its commit
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update(no_key=True).get(pk=bobs)
            held.set()
            release.wait(15)
            conversation.status = Status.PENDING
            conversation.save(update_fields=["status"])

    router = _in_thread(route_bobs)
    assert held.wait(5)
    batch = [mention("2", "43", "eve"), mention("3", "42", "bob"), mention("4", "45", "joe")]
    worker = _in_thread(lambda: mentions_ingest(account=twitter_account, mentions=batch))
    deadline = time.time() + 10
    while time.time() < deadline and _stored("2", "4") != {"2", "4"}:
        time.sleep(0.05)
    assert _stored("2", "3", "4") == {"2", "4"}
    release.set()
    router.join(10)
    worker.join(15)
    assert not worker.is_alive()
    assert Message.objects.get(external_id="3").conversation_id == bobs
    assert Conversation.objects.get(pk=bobs).status == Status.OPEN
    assert ConversationEvent.objects.filter(conversation_id=bobs, kind="status_changed",
                                            data__reason="customer replied").exists()
