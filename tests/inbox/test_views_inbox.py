"""The agent's inbox pages: views and counts, filters and search, order, unread
marks, the thread, the composer, notes with @mentions, actions, presence."""
import datetime as dt
import json
import re
from unittest import mock

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.inbox import services
from apps.inbox.models import CannedResponse, Conversation, ConversationEvent, Notification, Tag
from tests.factories import (ChannelAccountFactory, ConversationFactory, MessageFactory, QueueFactory,
                             SocialIdentityFactory, UserFactory)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_presence(settings, request):
    """Presence lives in the cache, which outlives each test's database rollback:
    each test gets an empty local one (never a flush of the shared Redis)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"inbox-{request.node.name}"}}


def _list(client, **params):
    return client.get(reverse("inbox:list"), params).content.decode()


def _ids_in(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="conv [^"]*" data-id="(\d+)"', page)]


@pytest.fixture
def conv(twitter_account, queue):
    c = ConversationFactory(channel_account=twitter_account, queue=queue, subject="My order is late")
    MessageFactory(conversation=c, text="My order is late")
    return c


def test_views_show_the_right_work_with_counts(client, agent, supervisor, queue, twitter_account):
    mine = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    unassigned = ConversationFactory(channel_account=twitter_account, queue=queue)
    theirs = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=supervisor, status="open")
    done = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved")
    spam = ConversationFactory(channel_account=twitter_account, queue=queue, is_spam=True)
    snoozed = ConversationFactory(channel_account=twitter_account, queue=queue,
                                  snoozed_until=timezone.now() + dt.timedelta(hours=2))
    other_queue = QueueFactory(team=queue.team, name="Escalations")
    escalated = ConversationFactory(channel_account=twitter_account, queue=other_queue)
    client.force_login(agent)

    assert _ids_in(_list(client, view="mine")) == [mine.pk]
    assert set(_ids_in(_list(client, view="unassigned"))) == {unassigned.pk, escalated.pk}
    assert set(_ids_in(_list(client, view="all"))) == {mine.pk, unassigned.pk, theirs.pk, escalated.pk}
    assert set(_ids_in(_list(client, view="queue", queue=other_queue.pk))) == {escalated.pk}
    assert _ids_in(_list(client, view="resolved")) == [done.pk]
    assert _ids_in(_list(client, view="spam")) == [spam.pk]
    assert _ids_in(_list(client, view="snoozed")) == [snoozed.pk]

    page = _list(client)
    nav = page[page.index('id="views-nav"'):page.index("</nav>", page.index('id="views-nav"'))]
    counts = dict(re.findall(r'<span>([^<]+)</span><span class="count"[^>]*>(\d+)</span>', nav))
    assert counts["My conversations"] == "1" and counts["Unassigned"] == "2" and counts["All open"] == "4"
    assert counts[queue.name] == "3" and counts["Escalations"] == "1" and counts["Snoozed"] == "1"


def test_filters_and_search(client, agent, queue, twitter_account, settings):
    other_account = ChannelAccountFactory(provider="demo", handle="@acme-demo")
    angry = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0, last_sentiment=-0.7,
                                subject="refund now")
    MessageFactory(conversation=angry, text="I want a refund for the broken blender")
    happy = ConversationFactory(channel_account=other_account, queue=queue, last_sentiment=0.8, assignee=agent,
                                status="open", subject="love it")
    MessageFactory(conversation=happy, text="Love the new app, thanks team")
    old = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=3,
                              last_message_at=timezone.now() - dt.timedelta(days=30), subject="hello")
    MessageFactory(conversation=old, text="Hello there")
    services.conversation_tags_set(conversation=old, tags="billing", actor=agent)
    client.force_login(agent)

    assert _ids_in(_list(client, priority="0")) == [angry.pk]
    assert _ids_in(_list(client, sentiment="negative")) == [angry.pk]
    assert _ids_in(_list(client, sentiment="positive")) == [happy.pk]
    assert _ids_in(_list(client, channel="demo")) == [happy.pk]
    assert _ids_in(_list(client, tag="billing")) == [old.pk]
    assert _ids_in(_list(client, assignee="me")) == [happy.pk]
    assert _ids_in(_list(client, status="open")) == [happy.pk]
    since = (timezone.now() - dt.timedelta(days=2)).date().isoformat()
    assert set(_ids_in(_list(client, date_from=since))) == {angry.pk, happy.pk}
    assert _ids_in(_list(client, date_to=since)) == [old.pk]
    # full-text on PostgreSQL, icontains on SQLite: words from any message, or the handle
    assert _ids_in(_list(client, q="blender")) == [angry.pk]
    assert _ids_in(_list(client, q="@" + happy.identity.handle)) == [happy.pk]
    assert _ids_in(_list(client, q="nothing-like-this")) == []


def test_the_assignee_filter_offers_every_working_user_by_name(client, agent, marketing_user, queue):
    named = UserFactory(role="agent", first_name="Zoë", last_name="<b>Bold</b>")
    plain = UserFactory(role="supervisor", first_name="", last_name="", username="lead-no-name")
    gone = UserFactory(role="agent", first_name="Gone", is_active=False)
    client.force_login(agent)

    page = _list(client, assignee=str(named.pk))
    select = page[page.index('id="f-assignee"'):]
    select = select[:select.index("</select>")]
    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]*)</option>', select)
    shown = {int(pk): (name, bool(chosen)) for pk, chosen, name in options}
    assert shown[named.pk] == ("Zoë &lt;b&gt;Bold&lt;/b&gt;", True)  # full name, escaped, the chosen one
    assert shown[plain.pk] == ("lead-no-name", False)  # no name: the username
    assert shown[agent.pk][1] is False
    assert marketing_user.pk not in shown and gone.pk not in shown  # not working users / inactive
    assert '<option value="me">Me</option>' in select and '<option value="none">Nobody</option>' in select


@pytest.mark.parametrize("plan", ["ids", "walk", "subqueries"])
def test_search_finds_the_same_conversations_whichever_plan_it_takes(client, agent, queue, twitter_account,
                                                                      monkeypatch, plan):
    """On PostgreSQL a common word is checked conversation by conversation along the list,
    a rare one is looked up in the index first (as ids, or as subqueries past the cap)."""
    from apps.inbox import selectors

    if plan == "walk":
        monkeypatch.setattr(selectors, "SEARCH_WALK_ABOVE", -1)
    if plan == "subqueries":
        monkeypatch.setattr(selectors, "SEARCH_IDS_UP_TO", 0)
    jane = SocialIdentityFactory(handle="janedoe", display_name="Jane Blackwood")
    by_text = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0)
    MessageFactory(conversation=by_text, text="first message")
    MessageFactory(conversation=by_text, text="where is my refund?")
    by_name = ConversationFactory(channel_account=twitter_account, queue=queue, identity=jane, customer=jane.customer,
                                  priority_bucket=1)
    MessageFactory(conversation=by_name, text="hello")
    resolved = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved")
    MessageFactory(conversation=resolved, text="refund arrived, thanks")
    MessageFactory(conversation=ConversationFactory(channel_account=twitter_account, queue=queue), text="all good")
    client.force_login(agent)

    assert _ids_in(_list(client, q="refund")) == [by_text.pk]
    assert _ids_in(_list(client, q="blackwood")) == [by_name.pk]
    assert _ids_in(_list(client, q="@jane")) == [by_name.pk]
    assert _ids_in(_list(client, q="refund", view="resolved")) == [resolved.pk]
    assert _ids_in(_list(client, q="nothing-like-this")) == []


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="whole words are PostgreSQL full-text search; the embedded SQLite searches substrings")
@pytest.mark.parametrize("plan", ["ids", "walk"])
def test_a_one_word_search_ignores_case_and_matches_whole_words(client, agent, queue, twitter_account, monkeypatch,
                                                               plan):
    """The walk checks a plain word's lowercased text first, then the full-text match decides."""
    from apps.inbox import selectors

    if plan == "walk":
        monkeypatch.setattr(selectors, "SEARCH_WALK_ABOVE", -1)
    shouted = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0)
    MessageFactory(conversation=shouted, text="WHERE IS MY REFUND")
    longer_word = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=1)
    MessageFactory(conversation=longer_word, text="I was refunded twice")
    plain = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=2)
    MessageFactory(conversation=plain, text="hello")
    MessageFactory(conversation=plain, text="refund?")
    client.force_login(agent)
    assert _ids_in(_list(client, q="Refund")) == [shouted.pk, plain.pk]
    assert _ids_in(_list(client, q="refunded")) == [longer_word.pk]


def test_search_past_the_id_cap_still_finds_every_conversation(client, agent, queue, twitter_account, monkeypatch):
    """The cap counts matching messages: a thread matching twice must not hide another one."""
    from apps.inbox import selectors

    monkeypatch.setattr(selectors, "SEARCH_IDS_UP_TO", 1)
    chatty = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0)
    MessageFactory(conversation=chatty, text="refund please")
    MessageFactory(conversation=chatty, text="still waiting for the refund")
    quiet = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=1)
    MessageFactory(conversation=quiet, text="refund?")
    client.force_login(agent)
    assert _ids_in(_list(client, q="refund")) == [chatty.pk, quiet.pk]


def test_resolved_view_shows_the_latest_first_and_undated_last(client, agent, queue, twitter_account):
    now = timezone.now()
    undated = ConversationFactory(channel_account=twitter_account, queue=queue, status="closed", last_message_at=None)
    older = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved",
                                last_message_at=now - dt.timedelta(days=3))
    newer = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved",
                                last_message_at=now - dt.timedelta(hours=1))
    ConversationFactory(channel_account=twitter_account, queue=queue, status="open", last_message_at=now)
    client.force_login(agent)
    assert _ids_in(_list(client, view="resolved")) == [newer.pk, older.pk, undated.pk]


def test_list_sorts_by_priority_bucket_then_sla_due_with_no_sla_last(client, agent, queue, twitter_account):
    now = timezone.now()
    normal_later = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=2,
                                       sla_due_at=now + dt.timedelta(hours=3))
    normal_no_sla = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=2)
    normal_sooner = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=2,
                                        sla_due_at=now + dt.timedelta(minutes=20))
    urgent = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0,
                                 sla_due_at=now + dt.timedelta(hours=5))
    client.force_login(agent)
    assert _ids_in(_list(client)) == [urgent.pk, normal_sooner.pk, normal_later.pk, normal_no_sla.pk]


def test_unread_mark_clears_when_opened_and_returns_with_a_new_message(client, agent, conv):
    conv.last_inbound_at = timezone.now()
    conv.save()
    client.force_login(agent)
    assert 'class="conv prio-2 status-new unread"' in _list(client)
    client.get(reverse("inbox:detail", args=[conv.pk]))
    assert " unread" not in _list(client)
    Conversation.objects.filter(pk=conv.pk).update(last_inbound_at=timezone.now() + dt.timedelta(seconds=1))
    assert " unread" in _list(client)


def test_list_and_thread_make_a_fixed_number_of_queries(client, agent, queue, twitter_account,
                                                        django_assert_max_num_queries):
    tag = Tag.objects.create(name="vip")
    for i in range(40):
        c = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent if i % 2 else None)
        c.tags.add(tag)
        MessageFactory(conversation=c)
    thread = Conversation.objects.first()
    for i in range(30):
        MessageFactory(conversation=thread, text=f"message {i}")
        services.note_create(conversation=thread, author=agent, text=f"note {i}")
    client.force_login(agent)
    client.get(reverse("inbox:list"))  # warm the session
    # session, user; page ids, rows, tags; queues; counts (one grouped pass), unread @mentions;
    # the full page adds the tag list and the agents
    with django_assert_max_num_queries(10):
        assert client.get(reverse("inbox:list")).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("inbox:list"), HTTP_HX_REQUEST="true").status_code == 200
    with django_assert_max_num_queries(12):  # search adds the plan estimate and the matching ids
        assert client.get(reverse("inbox:list"), {"q": "message"}).status_code == 200
    with django_assert_max_num_queries(17):
        assert client.get(reverse("inbox:detail", args=[thread.pk])).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(reverse("inbox:live", args=[thread.pk])).status_code == 200


def test_thread_shows_the_conversation_as_the_customer_lived_it(client, agent, queue, twitter_account):
    identity = SocialIdentityFactory(handle="jane", display_name="Jane Doe", followers_count=12345,
                                     profile_url="https://x.com/jane")
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, identity=identity)
    MessageFactory(conversation=conv, text="Still broken", url="https://x.com/jane/status/1", sentiment=-0.62,
                   sentiment_label="negative", raw={"quoted_text": "Our new blender is here!"})
    MessageFactory(conversation=conv, text="Hola, sigue roto", sentiment_label="not_scored", language="es")
    email = ChannelAccountFactory(provider="email", handle="support@acme.test")
    earlier = ConversationFactory(channel_account=email, queue=queue, customer=identity.customer,
                                  identity=SocialIdentityFactory(customer=identity.customer, provider="email"),
                                  subject="Invoice question", status="resolved")
    services.conversation_assign(conversation=conv, assignee=agent, actor=agent, reason="taking it")
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "Our new blender is here!" in page  # the quoted tweet
    assert "12345</strong> followers" in page and 'href="https://x.com/jane"' in page
    assert 'href="https://x.com/jane/status/1"' in page and "View original" in page
    assert "negative <span class=\"score\">-0.62</span>" in page and "not scored (es)" in page
    assert f'href="/inbox/c/{earlier.pk}/"' in page and "Invoice question" in page and "Email" in page
    assert "assigned: to " + agent.username in page and "taking it" in page


def test_composer_offers_dm_and_limit_from_the_provider(client, agent, conv):
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert 'data-max-length="280"' in page and "Direct message" in page
    demo_like = ConversationFactory(channel_account=ChannelAccountFactory(provider="demo", handle="@d"),
                                    queue=conv.queue)
    with mock.patch("apps.connectors.providers.demo.DemoProvider.supports_private_replies", False):
        page = client.get(reverse("inbox:detail", args=[demo_like.pk])).content.decode()
    assert 'value="dm"' not in page and "takes public replies only" in page


def _checked_mode(page: str) -> str:
    return re.search(r'<input type="radio" name="private" value="(\w*)"[^>]*\bchecked>', page)[1] or "public"


def test_composer_answers_a_dm_thread_by_dm_and_counts_against_that_modes_limit(
        client, agent, conv, queue, twitter_account):
    dm = ConversationFactory(channel_account=twitter_account, queue=queue, is_public=False)
    MessageFactory(conversation=dm, kind="private", text="hi, my order number is 4471")
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[dm.pk])).content.decode()
    assert _checked_mode(page) == "dm"
    assert 'data-max-length="10000" data-signature' in page and ">0 / 10000</span>" in page
    assert 'id="mode-public" data-max-length="280"' in page  # switching back counts against 280

    public = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()  # a public mention
    assert _checked_mode(public) == "public" and ">0 / 280</span>" in public

    # a private thread on a network without DMs: public is the only mode offered
    reddit = ConversationFactory(channel_account=ChannelAccountFactory(provider="reddit", handle="u/acme"),
                                 queue=queue, is_public=False)
    page = client.get(reverse("inbox:detail", args=[reddit.pk])).content.decode()
    assert _checked_mode(page) == "public" and 'value="dm"' not in page


def test_dm_takes_the_dm_limit_and_a_public_reply_the_public_one(client, agent, queue, twitter_account):
    dm = ConversationFactory(channel_account=twitter_account, queue=queue, is_public=False)
    MessageFactory(conversation=dm, kind="private")
    client.force_login(agent)
    long = "x" * 300
    resp = client.post(reverse("inbox:reply", args=[dm.pk]), {"text": long, "private": ""})
    assert resp.status_code == 400 and "The reply is 300 characters; Twitter / X allows 280." in resp.content.decode()
    # the agent chose public: the page keeps that choice with the draft
    assert _checked_mode(resp.content.decode()) == "public"
    with mock.patch("apps.inbox.tasks.message_send_task.delay"):
        resp = client.post(reverse("inbox:reply", args=[dm.pk]), {"text": long, "private": "dm"})
    assert resp.status_code == 302
    assert dm.messages.get(direction="out").kind == "private"


def test_canned_responses_render_variables_on_the_server_and_stay_inert(client, agent, conv):
    conv.customer.name = "Jane <b>Doe</b>"
    conv.customer.save()
    CannedResponse.objects.create(shortcut="thanks", title="Thanks",
                                  text="Thanks {{ customer.name }}! {{ agent.first_name }} {{ agent.password }} "
                                       "{% load static %}</script><script>alert(1)</script>")
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    data = json.loads(re.search(r'<script id="canned-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert data[0]["text"].startswith(f"Thanks Jane <b>Doe</b>! {agent.first_name} {{{{ agent.password }}}} {{% load")
    assert "<script>alert(1)</script>" not in page  # json_script escapes < >


def test_reply_refused_when_the_customer_wrote_meanwhile_keeps_the_draft(client, agent, conv):
    client.force_login(agent)
    started = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    MessageFactory(conversation=conv, text="Hello?? anyone there")
    resp = client.post(reverse("inbox:reply", args=[conv.pk]), {"text": "We are on it", "draft_started_at": started})
    assert resp.status_code == 409
    page = resp.content.decode()
    assert "Not sent: the customer sent a new message after you started this draft" in page
    assert ">We are on it</textarea>" in page and "Hello?? anyone there" in page
    assert not conv.messages.filter(direction="out").exists()


def test_reply_adds_the_agents_signature(client, agent, conv, django_capture_on_commit_callbacks):
    agent.signature = "^AA"
    agent.save()
    client.force_login(agent)
    with mock.patch("apps.inbox.tasks.message_send_task.delay"):
        client.post(reverse("inbox:reply", args=[conv.pk]), {"text": "Fixed now", "signature": "on", "private": "dm"})
    out = conv.messages.get(direction="out")
    assert out.text == "Fixed now\n^AA" and out.kind == "private"


def test_note_with_mention_notifies_the_teammate(client, agent, supervisor, conv):
    client.force_login(agent)
    resp = client.post(reverse("inbox:note", args=[conv.pk]),
                       {"text": f"@{supervisor.username.upper()} can you approve a refund? <b>x</b>"}, follow=True)
    page = resp.content.decode()
    assert f"notified {supervisor.display_name}" in page
    assert f'<strong class="mention">@{supervisor.username.upper()}</strong>' in page and "&lt;b&gt;x" in page
    note = conv.notes.get()
    assert list(note.mentions.all()) == [supervisor]
    client.force_login(supervisor)
    assert _ids_in(_list(client, view="mentions")) == [conv.pk]
    items = client.get(reverse("inbox:notifications")).json()["notifications"]
    assert [(n["kind"], n["conversation_id"], n["actor"]) for n in items] == [
        ("mentioned", conv.pk, agent.display_name)]
    client.get(reverse("inbox:detail", args=[conv.pk]))  # reading it clears the notification
    assert client.get(reverse("inbox:notifications")).json()["notifications"] == []


def test_assigning_to_someone_else_notifies_them_but_not_yourself(client, agent, supervisor, conv):
    client.force_login(supervisor)
    client.post(reverse("inbox:assign", args=[conv.pk]), {"assignee": agent.pk})
    assert Notification.objects.filter(user=agent, kind="assigned", conversation=conv).count() == 1
    client.force_login(agent)
    client.post(reverse("inbox:assign", args=[conv.pk]), {"assignee": "me"})  # no change, no second row
    client.post(reverse("inbox:assign", args=[conv.pk]), {"assignee": ""})
    client.post(reverse("inbox:assign", args=[conv.pk]), {"assignee": "me"})
    assert Notification.objects.filter(user=agent, kind="assigned").count() == 1


def test_actions_snooze_tags_priority_spam_are_audited(client, agent, conv):
    client.force_login(agent)
    client.post(reverse("inbox:snooze", args=[conv.pk]), {"preset": "1h"})
    conv.refresh_from_db()
    assert conv.snoozed_until > timezone.now() and conv.pk not in _ids_in(_list(client))
    client.post(reverse("inbox:snooze", args=[conv.pk]), {"wake": "1"})
    assert conv.pk in _ids_in(_list(client))
    client.post(reverse("inbox:tags", args=[conv.pk]), {"tags": "Refund, billing ,refund"})
    assert sorted(conv.tags.values_list("name", flat=True)) == ["billing", "refund"]
    client.post(reverse("inbox:priority", args=[conv.pk]), {"priority_bucket": "0"})
    conv.refresh_from_db()
    assert conv.priority_bucket == 0
    client.post(reverse("inbox:spam", args=[conv.pk]))
    assert conv.pk not in _ids_in(_list(client)) and _ids_in(_list(client, view="spam")) == [conv.pk]
    kinds = list(ConversationEvent.objects.filter(conversation=conv).values_list("kind", flat=True))
    assert kinds == ["snoozed", "unsnoozed", "tags_changed", "priority_changed", "marked_spam"]
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "changed tags: +billing, +refund" in page and "Normal → Urgent" in page


def test_snooze_in_the_past_is_refused(client, agent, conv):
    client.force_login(agent)
    resp = client.post(reverse("inbox:snooze", args=[conv.pk]), {"preset": "", "until": "2001-01-01T10:00"},
                       follow=True)
    assert "Snooze until a time in the future." in resp.content.decode()


@pytest.mark.parametrize("form, kind", [({"survey": "csat"}, "csat"), ({"survey": "ces"}, "ces"),
                                        ({"survey": "nps"}, "nps"), ({"send_survey": "on"}, "csat")])
def test_resolve_can_send_each_survey(client, agent, conv, monkeypatch, form, kind):
    import apps.reports.surveys as report_surveys
    from apps.inbox.signals import SurveyOutcome

    sent = []

    def fake(*, conversation, actor, kind, automatic):
        sent.append((conversation.pk, actor, kind, automatic))
        return SurveyOutcome(kind, True)

    monkeypatch.setattr(report_surveys, "survey_for_resolve", fake)
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert '<select name="survey" id="survey"' in page and '<option value="nps">NPS (0-10)</option>' in page
    assert '<option value="none" selected>No survey</option>' in page  # the channel's policy: none
    resp = client.post(reverse("inbox:status", args=[conv.pk]), {"status": "resolved", **form}, follow=True)
    conv.refresh_from_db()
    assert conv.status == "resolved" and sent == [(conv.pk, agent, kind, False)]
    assert "survey is on its way" in resp.content.decode()


def test_presence_shows_who_views_and_types(client, agent, supervisor, conv):
    client.force_login(supervisor)
    assert client.post(reverse("inbox:presence", args=[conv.pk]), {"typing": "1"}).json()["viewers"] == []
    client.force_login(agent)
    viewers = client.post(reverse("inbox:presence", args=[conv.pk]), {}).json()["viewers"]
    assert viewers == [{"user_id": supervisor.pk, "name": supervisor.display_name, "typing": True}]
    assert f"{supervisor.display_name} typing…" in _list(client)
    assert f"{supervisor.display_name} is typing…" in client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()


def test_roles_and_visibility_on_every_inbox_url(client, agent, marketing_user, conv, twitter_account):
    hidden = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())
    msg = MessageFactory(conversation=hidden)
    gets = ["detail", "live"]
    posts = ["reply", "status", "assign", "note", "snooze", "tags", "priority", "spam", "presence"]
    client.force_login(agent)
    for name in gets:
        assert client.get(reverse(f"inbox:{name}", args=[hidden.pk])).status_code == 404
    for name in posts:
        assert client.post(reverse(f"inbox:{name}", args=[hidden.pk]), {"text": "x"}).status_code == 404
    assert client.post(reverse("inbox:retry", args=[hidden.pk, msg.pk])).status_code == 404
    client.force_login(marketing_user)
    for name in gets:
        assert client.get(reverse(f"inbox:{name}", args=[conv.pk])).status_code == 403
    for name in posts:
        assert client.post(reverse(f"inbox:{name}", args=[conv.pk])).status_code == 403
    assert client.get(reverse("inbox:notifications")).status_code == 403
    client.logout()
    assert client.get(reverse("inbox:notifications")).status_code == 302


def test_user_text_is_escaped_in_list_timeline_and_audit(client, agent, conv):
    conv.tags.add(Tag.objects.create(name="<img src=x>"))  # a row from before the tag rule
    services.note_create(conversation=conv, author=agent, text="<script>n()</script> @nobody")
    conv.identity.display_name = "<svg onload=x>"
    conv.identity.save()
    client.force_login(agent)
    for page in (_list(client), client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()):
        assert "<img src=x>" not in page and "<svg onload" not in page and "<script>n()" not in page


def _row(page: str, pk: int) -> str:
    return re.search(rf'<li class="conv [^"]*" data-id="{pk}">.*?</li>', page, re.S).group(0)


def test_a_list_row_shows_the_conversation_with_the_customers_text_escaped(client, agent, queue, twitter_account):
    """Every row value is made in apps/inbox/list_rows.py: what it shows, in the agent's time
    zone, and whatever customers, agents or admins typed printed as text, never as markup."""
    from apps.inbox import presence

    agent.time_zone = "Asia/Kolkata"  # UTC+5:30
    agent.save()
    helper = UserFactory(role="agent", first_name="Ann & Co", last_name="O'Hara")
    watcher = UserFactory(role="agent", first_name="<Zed>", last_name="")
    queue.team.members.add(helper, watcher)
    queue.name = "Tier <2>"
    queue.save()
    vip, odd = Tag.objects.create(name="vip"), Tag.objects.create(name="<x>")
    identity = SocialIdentityFactory(handle="h<b>", display_name="Jane <img src=x>")
    due = ConversationFactory(channel_account=twitter_account, queue=queue, identity=identity,
                              customer=identity.customer, status="open", priority_bucket=0, assignee=helper,
                              subject="<b>" + "a" * 200, last_sentiment=-0.7, is_public=False,
                              last_inbound_at=timezone.now(), sla_due_at=dt.datetime(2030, 3, 4, 15, 30, tzinfo=dt.UTC))
    due.tags.add(vip, odd)
    breached = ConversationFactory(channel_account=twitter_account, queue=queue, subject="", priority_bucket=1,
                                   sla_due_at=timezone.now() - dt.timedelta(hours=1), sla_breached=True)
    snoozed = ConversationFactory(channel_account=twitter_account, queue=queue, status="open",
                                  snoozed_until=dt.datetime(2030, 1, 2, 23, 45, tzinfo=dt.UTC))
    presence.presence_touch(conversation_id=due.pk, user=watcher, typing=True)
    client.force_login(agent)

    page = _list(client)
    row = _row(page, due.pk)
    assert row.startswith('<li class="conv prio-0 status-open unread"')
    assert f'href="{reverse("inbox:detail", args=[due.pk])}"' in row
    assert '<span class="sr-only">Unread: </span>' in row
    assert "@h&lt;b&gt; <small>Jane &lt;img src=x&gt;</small>" in row
    assert '<span class="badge prio">Urgent</span>' in row and '<span class="badge status">Open</span>' in row
    assert f'<span class="badge channel">{twitter_account.get_provider_display()} · DM</span>' in row
    assert '<span class="sentiment s-negative">negative</span>' in row
    assert '<span class="badge tag">#vip</span>' in row and '<span class="badge tag">#&lt;x&gt;</span>' in row
    assert '<span class="subject">&lt;b&gt;' + "a" * 156 + "…</span>" in row
    assert "Ann &amp; Co O&#x27;Hara · Tier &lt;2&gt;" in row
    assert f'<time datetime="{due.last_message_at.isoformat()}">' in row and " ago</time>" in row
    assert '<span class="sla">SLA due Mar 4, 21:00</span>' in row  # 15:30 UTC in Kolkata
    assert '<span class="viewer typing">&lt;Zed&gt; typing…</span>' in row
    assert "<img" not in page and "<Zed>" not in page and "<b>" not in page

    row = _row(page, breached.pk)
    assert 'class="conv prio-1 status-new breached"' in row and '<span class="subject">(no text)</span>' in row
    assert '<span class="sla sla-breached">SLA breached</span>' in row and "Unassigned · Tier &lt;2&gt;" in row
    assert " snoozed until Jan 3, 05:15" in _row(_list(client, view="snoozed"), snoozed.pk)
    # the live refresh swaps in the same rows
    fragment = client.get(reverse("inbox:list"), HTTP_HX_REQUEST="true").content.decode()
    assert _row(fragment, due.pk) == _row(page, due.pk)


def test_load_more_returns_the_next_rows(client, agent, queue, twitter_account):
    for _ in range(55):
        ConversationFactory(channel_account=twitter_account, queue=queue)
    client.force_login(agent)
    first = _list(client)
    assert len(_ids_in(first)) == 50 and "Show more" in first
    more = client.get(reverse("inbox:list"), {"page": 1, "partial": "rows"}, HTTP_HX_REQUEST="true").content.decode()
    assert len(_ids_in(more)) == 5 and "Show more" not in more and "views-nav" not in more


def test_supervisor_sees_a_teammates_typing_in_the_list_but_not_their_own(client, supervisor, conv):
    client.force_login(supervisor)
    client.post(reverse("inbox:presence", args=[conv.pk]), {"typing": "1"})
    assert "typing…" not in _list(client)
    other = UserFactory(role="agent", first_name="Zed")
    conv.queue.team.members.add(other)
    client.force_login(other)
    assert f"{supervisor.display_name} typing…" in _list(client)


def test_resolve_with_survey_posts_the_survey_link_as_an_automatic_message(client, agent, conv):
    client.force_login(agent)
    client.post(reverse("inbox:status", args=[conv.pk]), {"status": "resolved", "send_survey": "on"})
    conv.refresh_from_db()
    link = conv.messages.get(direction="out")
    assert conv.status == "resolved" and link.is_bot and link.send_status == "queued"


def test_a_date_filter_that_is_no_real_day_is_ignored(client, agent, conv):
    client.force_login(agent)
    resp = client.get(reverse("inbox:list"), {"date_from": "2024-02-31"})
    assert resp.status_code == 200 and conv.pk in _ids_in(resp.content.decode())
