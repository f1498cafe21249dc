"""CSAT, CES and NPS from the resolve form and the API, and the survey policy per channel account
(issue 22): which survey a resolve sends by itself, and at most one survey per customer every N
days, on any channel. Through the pages, the API and the X stand-in: what the customer receives is
a direct message, never a public reply; a survey held back says why on the thread."""
import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse

from apps.accounts.models import AuditEntry
from apps.connectors.models import ChannelAccount
from apps.inbox.models import Message
from apps.inbox.sending import message_send
from apps.reports.models import Survey
from tests.factories import (ChannelAccountFactory, ConversationFactory, MessageFactory, SocialIdentityFactory,
                             TeamFactory, UserFactory)

pytestmark = pytest.mark.django_db

NAMES = {"csat": "satisfaction (CSAT)", "ces": "effort (CES)", "nps": "NPS"}
SCALE = {"csat": "1 to 5", "ces": "(1-7)", "nps": "(0-10)"}


@pytest.fixture(autouse=True)
def no_outbound_task():
    # The outbound task is the worker's; the tests send with message_send where the network matters.
    with mock.patch("apps.inbox.tasks.message_send_task.delay"):
        yield


def _x_conversation(twitter_api, account, queue, agent, *, user_id="11", identity=None):
    twitter_api.add_user(user_id, f"user{user_id}")
    tweet = twitter_api.add_mention("@acme my order is late", author_id=user_id)
    extra = {"identity": identity} if identity else {"identity__external_id": user_id,
                                                     "identity__handle": f"user{user_id}"}
    conv = ConversationFactory(channel_account=account, queue=queue, assignee=agent, status="open", is_public=True,
                               **extra)
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    return conv


def _delivered_privately(twitter_api, survey, user_id="11") -> str:
    """Sends the survey's message through the provider; returns the direct message's text."""
    message = Message.objects.get(pk=survey.message_id)
    assert message.kind == Message.Kind.PRIVATE and message.is_bot
    message_send(message_id=message.pk)
    assert twitter_api.posted == []  # nothing public
    dm = twitter_api.dms[-1]
    assert dm["participant_id"] == user_id and "/survey/" in dm["text"]
    return dm["text"]


def _policy(account, kind, cap_days=0):
    ChannelAccount.objects.filter(pk=account.pk).update(survey_auto=kind, survey_cap_days=cap_days)


def _resolve_api(api_client, user, conv, **body):
    api_client.force_authenticate(user)
    return api_client.post(f"/api/v1/conversations/{conv.pk}/status/", {"status": "resolved", **body}, format="json")


# --- each kind, from the form and from the API ------------------------------------------------------

@pytest.mark.parametrize("kind", ["csat", "ces", "nps"])
def test_each_survey_from_the_resolve_form_reaches_the_customer_by_direct_message(
        client, agent, queue, twitter_api, twitter_account, kind):
    conv = _x_conversation(twitter_api, twitter_account, queue, agent)
    client.force_login(agent)
    page = client.post(reverse("inbox:status", args=[conv.pk]), {"status": "resolved", "survey": kind},
                       follow=True).content.decode()
    assert f"Resolved; the {NAMES[kind]} survey is on its way to the customer by private message." in page
    survey = Survey.objects.get(conversation=conv)
    assert survey.kind == kind and survey.sent_by == agent
    assert SCALE[kind] in _delivered_privately(twitter_api, survey)
    conv.refresh_from_db()
    assert conv.status == "resolved"


@pytest.mark.parametrize("body, kind", [({"survey": "csat"}, "csat"), ({"survey": "ces"}, "ces"),
                                        ({"survey": "nps"}, "nps"), ({"send_survey": True}, "csat")])
def test_each_survey_from_the_api_reaches_the_customer_by_direct_message(
        api_client, agent, queue, twitter_api, twitter_account, body, kind):
    conv = _x_conversation(twitter_api, twitter_account, queue, agent)
    resp = _resolve_api(api_client, agent, conv, **body)
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "resolved"
    assert resp.json()["survey"] == {"kind": kind, "sent": True, "detail": f"Resolved; the {NAMES[kind]} survey is "
                                                                           "on its way to the customer by private "
                                                                           "message."}
    survey = Survey.objects.get(conversation=conv)
    assert survey.kind == kind
    _delivered_privately(twitter_api, survey)


def test_the_api_sends_no_survey_when_asked_for_none(api_client, agent, queue, twitter_api, twitter_account):
    _policy(twitter_account, "nps")
    conv = _x_conversation(twitter_api, twitter_account, queue, agent)
    for body in ({"survey": "none"}, {"send_survey": False}):
        conv.status = "open"
        conv.save(update_fields=["status"])
        resp = _resolve_api(api_client, agent, conv, **body)
        assert resp.status_code == 200 and resp.json()["survey"] is None
    assert not Survey.objects.exists() and not conv.messages.filter(direction="out").exists()


# --- the policy --------------------------------------------------------------------------------------

def test_an_admin_sets_the_policy_on_the_channel_page_and_it_sends_on_every_resolve(
        client, api_client, admin_user, agent, queue, twitter_api, twitter_account):
    client.force_login(admin_user)
    detail = client.get(reverse("connectors:channel_detail", args=[twitter_account.pk])).content.decode()
    assert "Surveys after resolve" in detail and 'name="survey_auto"' in detail
    resp = client.post(reverse("connectors:channel_surveys", args=[twitter_account.pk]),
                       {"survey_auto": "nps", "survey_cap_days": "0"}, follow=True)
    assert "Survey policy saved." in resp.content.decode()
    twitter_account.refresh_from_db()
    assert (twitter_account.survey_auto, twitter_account.survey_cap_days) == ("nps", 0)
    audit = AuditEntry.objects.get(action="channel.survey_policy")
    assert audit.actor == admin_user and audit.data["survey_auto"] == "nps"

    # the resolve form offers the policy's survey first
    client.force_login(agent)
    by_form = _x_conversation(twitter_api, twitter_account, queue, agent, user_id="11")
    page = client.get(reverse("inbox:detail", args=[by_form.pk])).content.decode()
    assert '<option value="nps" selected>NPS (0-10)</option>' in page and "This channel sends NPS by default." in page
    # the plain status select (no survey field) resolves with the policy's survey
    client.post(reverse("inbox:status", args=[by_form.pk]), {"status": "resolved"})
    # and so does the API without `survey`
    by_api = _x_conversation(twitter_api, twitter_account, queue, agent, user_id="12")
    resp = _resolve_api(api_client, agent, by_api)
    assert resp.json()["survey"]["kind"] == "nps" and resp.json()["survey"]["sent"] is True

    form_survey, api_survey = Survey.objects.get(conversation=by_form), Survey.objects.get(conversation=by_api)
    assert form_survey.kind == api_survey.kind == "nps"
    _delivered_privately(twitter_api, form_survey, user_id="11")
    _delivered_privately(twitter_api, api_survey, user_id="12")
    assert by_api.events.get(kind="survey_sent").data["automatic"] is True


def test_the_agents_choice_overrides_the_policy_for_that_resolve(client, agent, queue, twitter_api, twitter_account):
    _policy(twitter_account, "nps")
    client.force_login(agent)
    quiet = _x_conversation(twitter_api, twitter_account, queue, agent, user_id="11")
    page = client.post(reverse("inbox:status", args=[quiet.pk]), {"status": "resolved", "survey": "none"},
                       follow=True).content.decode()
    assert "survey" not in page.split('class="flash', 1)[-1].split("</p>", 1)[0]
    assert not Survey.objects.filter(conversation=quiet).exists()
    other = _x_conversation(twitter_api, twitter_account, queue, agent, user_id="12")
    client.post(reverse("inbox:status", args=[other.pk]), {"status": "resolved", "survey": "ces"})
    assert Survey.objects.get(conversation=other).kind == "ces"
    assert other.events.get(kind="survey_sent").data["automatic"] is False


def test_a_second_resolve_sends_no_second_survey(api_client, agent, queue, twitter_api, twitter_account):
    _policy(twitter_account, "csat")
    conv = _x_conversation(twitter_api, twitter_account, queue, agent)
    assert _resolve_api(api_client, agent, conv).json()["survey"]["sent"] is True
    again = _resolve_api(api_client, agent, conv)  # a client's retry
    assert again.status_code == 200 and again.json()["survey"] is None
    assert Survey.objects.filter(conversation=conv).count() == 1


# --- the frequency cap -------------------------------------------------------------------------------

def test_a_customer_resolved_five_times_in_a_day_gets_one_survey_and_the_threads_say_why(
        client, api_client, agent, queue, twitter_api, twitter_account):
    _policy(twitter_account, "csat", cap_days=7)
    identity = SocialIdentityFactory(external_id="11", handle="user11")
    conversations = [_x_conversation(twitter_api, twitter_account, queue, agent, identity=identity)
                     for _ in range(5)]
    answers = [_resolve_api(api_client, agent, conv).json()["survey"] for conv in conversations]
    assert [a["sent"] for a in answers] == [True, False, False, False, False]
    assert Survey.objects.count() == 1
    assert "this customer had a survey on " in answers[1]["detail"]
    assert "Acme on X sends at most one per customer every 7 days" in answers[1]["detail"]

    # another customer is not held back by the first one's survey
    stranger = _x_conversation(twitter_api, twitter_account, queue, agent, user_id="99")
    assert _resolve_api(api_client, agent, stranger).json()["survey"]["sent"] is True

    # the held-back survey is on the thread, among the messages
    client.force_login(agent)
    thread = client.get(reverse("inbox:detail", args=[conversations[2].pk])).content.decode()
    timeline = thread[thread.index('id="timeline"'):]
    assert "automatic CSAT survey not sent: this customer had a survey on" in timeline
    assert conversations[2].events.filter(kind="survey_not_sent", data__automatic=True).exists()
    assert not conversations[2].messages.filter(direction="out").exists()


def test_the_cap_holds_across_channels_and_for_the_agents_choice_and_ends_after_n_days(
        client, agent, queue, twitter_api, twitter_account):
    _policy(twitter_account, "none", cap_days=7)
    email = ChannelAccountFactory(provider="email", name="Acme support mail", handle="help@acme.example",
                                  survey_cap_days=30)
    identity = SocialIdentityFactory(external_id="11", handle="user11")
    on_x = _x_conversation(twitter_api, twitter_account, queue, agent, identity=identity)
    client.force_login(agent)
    client.post(reverse("inbox:status", args=[on_x.pk]), {"status": "resolved", "survey": "nps"})
    first = Survey.objects.get()
    _delivered_privately(twitter_api, first)

    # the same customer writes by email: that channel's limit (30 days) sees the survey sent on X
    by_mail = ConversationFactory(channel_account=email, queue=queue, assignee=agent, status="open",
                                  identity=SocialIdentityFactory(customer=identity.customer, provider="email"))
    MessageFactory(conversation=by_mail)
    page = client.post(reverse("inbox:status", args=[by_mail.pk]), {"status": "resolved", "survey": "ces"},
                       follow=True).content.decode()
    assert "Resolved; survey not sent: this customer had a survey on" in page
    assert "Acme support mail sends at most one per customer every 30 days" in page
    assert Survey.objects.count() == 1 and not by_mail.messages.filter(direction="out").exists()
    assert "CES survey not sent: this customer had a survey on" in client.get(
        reverse("inbox:detail", args=[by_mail.pk])).content.decode()

    # eight days later X's 7-day limit has passed (the email channel's 30 days have not)
    Survey.objects.filter(pk=first.pk).update(sent_at=first.sent_at - dt.timedelta(days=8))
    again = _x_conversation(twitter_api, twitter_account, queue, agent, identity=identity)
    client.post(reverse("inbox:status", args=[again.pk]), {"status": "resolved", "survey": "csat"})
    assert Survey.objects.get(conversation=again).kind == "csat"


def test_the_resolve_form_says_the_cap_holds_for_the_agents_choice_too(client, agent, queue, twitter_account):
    _policy(twitter_account, "csat", cap_days=14)
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "At most one survey per customer every 14 days, your choice included." in page


# --- who may change the policy, and what it takes ----------------------------------------------------

@pytest.mark.parametrize("who", ["agent", "supervisor", "other_team_supervisor", "marketing"])
def test_only_admins_change_the_policy(client, agent, supervisor, marketing_user, twitter_account, who):
    other = UserFactory(role="supervisor")
    TeamFactory().leads.add(other)
    user = {"agent": agent, "supervisor": supervisor, "other_team_supervisor": other, "marketing": marketing_user}[who]
    client.force_login(user)
    resp = client.post(reverse("connectors:channel_surveys", args=[twitter_account.pk]),
                       {"survey_auto": "nps", "survey_cap_days": "1"})
    assert resp.status_code == 403
    twitter_account.refresh_from_db()
    assert (twitter_account.survey_auto, twitter_account.survey_cap_days) == ("none", 0)
    assert not AuditEntry.objects.filter(action="channel.survey_policy").exists()


def test_marketing_cannot_resolve_with_a_survey(api_client, marketing_user, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    assert _resolve_api(api_client, marketing_user, conv, survey="nps").status_code == 403
    assert not Survey.objects.exists()


@pytest.mark.parametrize("values, error", [
    ({"survey_auto": "<script>alert(1)</script>", "survey_cap_days": "7"}, "Select a valid choice."),
    ({"survey_auto": "nps", "survey_cap_days": "-1"}, "greater than or equal to 0"),
    ({"survey_auto": "nps", "survey_cap_days": "99999999999999999999"}, "less than or equal to 365"),
    ({"survey_auto": "nps", "survey_cap_days": "7.5"}, "Enter a whole number."),
    ({"survey_auto": "nps", "survey_cap_days": "<b>7</b>"}, "Enter a whole number."),
    ({"survey_auto": "nps\x00", "survey_cap_days": "7"}, "Select a valid choice."),
])
def test_hostile_policy_values_are_a_form_error(client, admin_user, twitter_account, values, error):
    client.force_login(admin_user)
    resp = client.post(reverse("connectors:channel_surveys", args=[twitter_account.pk]), values)
    page = resp.content.decode()
    assert resp.status_code == 400 and error in page
    assert "<script>alert(1)" not in page and "<b>7</b>" not in page
    twitter_account.refresh_from_db()
    assert (twitter_account.survey_auto, twitter_account.survey_cap_days) == ("none", 0)


@pytest.mark.parametrize("body, field", [
    ({"status": "resolved", "survey": "<script>alert(1)</script>"}, "survey"),
    ({"status": "resolved", "survey": "CSAT"}, "survey"),
    ({"status": "resolved", "survey": ["nps"]}, "survey"),
    ({"status": "resolved", "send_survey": "maybe"}, "send_survey"),
    ({"status": "resolved", "survey": "nps", "send_survey": True}, "survey"),
    ({"status": "pending", "survey": "nps"}, "survey"),
])
def test_hostile_survey_values_in_the_api_are_a_400_and_nothing_changes(api_client, agent, queue, twitter_account,
                                                                        body, field):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    api_client.force_authenticate(agent)
    resp = api_client.post(f"/api/v1/conversations/{conv.pk}/status/", body, format="json")
    assert resp.status_code == 400 and field in resp.json()["detail"]
    assert "<script>" not in resp.content.decode()
    conv.refresh_from_db()
    assert conv.status == "open" and not Survey.objects.exists()


def test_a_hostile_survey_on_the_resolve_form_is_refused_and_nothing_is_resolved(client, agent, queue,
                                                                                 twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    client.force_login(agent)
    resp = client.post(reverse("inbox:status", args=[conv.pk]),
                       {"status": "resolved", "survey": "<img src=x onerror=alert(1)>"}, follow=True)
    page = resp.content.decode()
    assert "Pick a survey: none, CSAT, CES or NPS." in page and "<img src=x" not in page
    conv.refresh_from_db()
    assert conv.status == "open" and not Survey.objects.exists()


def test_the_schema_documents_the_survey_choice(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    props = schema["components"]["schemas"]["StatusInput"]["properties"]
    assert "send_survey" in props and "survey" in props
    ref = props["survey"]["allOf"][0]["$ref"]
    enum = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["enum"]
    assert "channel account's policy" in props["survey"]["description"]
    assert set(enum) == {"none", "csat", "ces", "nps"}
    result = schema["components"]["schemas"]["StatusResult"]["properties"]
    assert "survey" in result


def test_the_django_admin_edits_the_policy(client, admin_user, twitter_account):
    client.force_login(admin_user)
    page = client.get(reverse("admin:connectors_channelaccount_change", args=[twitter_account.pk])).content.decode()
    assert 'name="survey_auto"' in page and 'name="survey_cap_days"' in page
    changelist = client.get(reverse("admin:connectors_channelaccount_changelist")).content.decode()
    assert "column-survey_auto" in changelist
