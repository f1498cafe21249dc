"""Surveys: sent through the channel as a bot message, answered once on a public page."""
import pytest
from django.urls import reverse

from apps.inbox.models import Message
from apps.reports import surveys
from apps.reports.models import MetricEvent, Survey
from tests.factories import ConversationFactory, MessageFactory


@pytest.fixture
def resolved_conversation(queue, agent):
    conversation = ConversationFactory(queue=queue, assignee=agent, status="resolved")
    MessageFactory(conversation=conversation, text="my order is late")
    return conversation


def _path(survey):
    url = surveys.survey_url(survey)
    return url[url.index("/survey/"):]


def test_survey_send_posts_link_as_bot_message(resolved_conversation, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        survey = surveys.survey_send(conversation=resolved_conversation, actor=agent)
    message = Message.objects.get(pk=survey.message_id)
    assert message.is_bot and message.direction == "out" and message.send_status == "queued"
    # the link in the post opens this survey (its signature carries a timestamp, so compare what it opens)
    signed = message.text.split("/survey/", 1)[1].split("/", 1)[0]
    assert surveys.survey_from_signed(signed) == survey
    assert len(message.text) <= 280
    assert callbacks, "the send task is fired after commit"
    resolved_conversation.refresh_from_db()
    assert resolved_conversation.status == "resolved"
    assert resolved_conversation.first_response_at is None  # a survey link is not a response
    assert MetricEvent.objects.filter(kind="csat_sent", conversation_id=resolved_conversation.pk).count() == 1


def test_public_page_records_one_answer(client, resolved_conversation, agent):
    survey = surveys.survey_send(conversation=resolved_conversation, actor=agent)
    path = _path(survey)
    page = client.get(path)
    assert page.status_code == 200 and b"How did we do?" in page.content
    response = client.post(path, {"score": "2", "comment": "slow <b>reply</b>"})
    assert response.status_code == 200 and b"Thank you" in response.content
    survey.refresh_from_db()
    assert survey.score == 2 and survey.comment == "slow <b>reply</b>" and survey.answered_at
    again = client.post(path, {"score": "5"})
    assert b"already" in again.content or b"recorded" in again.content
    survey.refresh_from_db()
    assert survey.score == 2
    assert MetricEvent.objects.filter(kind="csat", value=2).count() == 1
    assert MetricEvent.objects.filter(kind="csat_answered").count() == 1


@pytest.mark.parametrize("kind,bad,good", [("csat", "6", "5"), ("ces", "8", "7"), ("nps", "11", "0")])
def test_scales_are_enforced(client, resolved_conversation, agent, kind, bad, good):
    survey = surveys.survey_send(conversation=resolved_conversation, actor=agent, kind=kind)
    path = _path(survey)
    assert client.post(path, {"score": bad}).status_code == 400
    assert client.post(path, {"score": good}).status_code == 200
    survey.refresh_from_db()
    assert survey.score == int(good)


def test_tampered_or_unknown_token_is_404(client, resolved_conversation, agent):
    survey = surveys.survey_send(conversation=resolved_conversation, actor=agent)
    path = _path(survey)
    assert client.get(path[:-3] + "xx/").status_code == 404
    assert client.get(reverse("survey", kwargs={"token": survey.token})).status_code == 404  # unsigned
    assert Survey.objects.get(pk=survey.pk).answered_at is None
