"""The public survey page under hostile input (issue 18): anyone holding (or
guessing) a link can send anything. Each case is a clear 4xx page or a defined
outcome, never a 500, and an answer is never counted twice."""
import threading
import time
from unittest import mock

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps.reports import rollups, surveys
from apps.reports.models import MetricEvent, Survey
from tests.factories import ConversationFactory, MessageFactory


@pytest.fixture
def conversation(queue, agent):
    conversation = ConversationFactory(queue=queue, assignee=agent, status="resolved")
    MessageFactory(conversation=conversation, text="my order is late")
    return conversation


@pytest.fixture
def survey(conversation, agent):
    return surveys.survey_send(conversation=conversation, actor=agent)


def _path(survey):
    url = surveys.survey_url(survey)
    return url[url.index("/survey/"):]


def _answers(survey):
    return MetricEvent.objects.filter(kind=survey.kind, data__survey_id=survey.pk).count()


def _client():
    return Client(raise_request_exception=False)


# --- tokens -------------------------------------------------------------------------------

def _signed(value, salt=surveys.SURVEY_SALT):
    return signing.dumps(value, salt=salt, compress=False)


@pytest.mark.parametrize("token", [
    "x" * 10_000,                       # 10k characters
    "a%00b",                            # a NUL in the path
    "%ED%A0%80",                        # a lone surrogate, UTF-8 encoded
    "%FF%FE",                           # not UTF-8 at all
    "..%2F..%2Fadmin",
    "<script>alert(1)<%2Fscript>",
    "e30:1abc:" + "A" * 43,             # looks signed, is not
])
def test_malformed_tokens_are_404(db, token):
    response = _client().get(f"/survey/{token}/")
    assert response.status_code == 404
    assert b"<script>alert" not in response.content
    response = _client().post(f"/survey/{token}/", {"score": "5"})
    assert response.status_code == 404


def test_tampered_token_is_404_and_answers_nothing(survey):
    path = _path(survey)
    signed = path.split("/")[2]
    value, stamp, signature = signed.split(":")
    other = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (f"{value}:{stamp}:{other}", f"{value}:{stamp}:", f"{value}::{signature}",
                   f"{value}:{stamp}:{signature}:{signature}", signed + "\x00"):
        response = _client().post(f"/survey/{forged}/", {"score": "1"})
        assert response.status_code in (400, 404), forged
    survey.refresh_from_db()
    assert survey.answered_at is None and _answers(survey) == 0


def test_tokens_signed_for_something_else_are_404(survey):
    # another salt (a signed value from elsewhere), a signed survey that no longer exists,
    # a signed value that is not a token string: none opens a survey
    for signed in (_signed(survey.token, salt="some.other.salt"), _signed("no-such-token"),
                   _signed({"token": survey.token}), _signed([survey.token]), _signed(None), _signed(12)):
        assert _client().get(f"/survey/{signed}/").status_code == 404, signed
        assert _client().post(f"/survey/{signed}/", {"score": "1"}).status_code == 404
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_expired_token_is_410(survey, settings):
    settings.REPORTS_SURVEY_MAX_AGE_DAYS = 30
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 31 * 86400):
        path = _path(survey)
    response = _client().post(path, {"score": "5"})
    assert response.status_code == 410 and b"expired" in response.content
    survey.refresh_from_db()
    assert survey.answered_at is None and _answers(survey) == 0


def test_other_conversations_token_answers_only_its_own_survey(survey, queue, agent):
    other = ConversationFactory(queue=queue, assignee=agent, status="resolved")
    other_survey = surveys.survey_send(conversation=other, actor=agent)
    assert _client().post(_path(other_survey), {"score": "1"}).status_code == 200
    survey.refresh_from_db()
    other_survey.refresh_from_db()
    assert survey.answered_at is None and other_survey.score == 1
    # the raw (unsigned) token of a survey does not open it
    assert _client().post(f"/survey/{survey.token}/", {"score": "5"}).status_code == 404
    survey.refresh_from_db()
    assert survey.answered_at is None


# --- scores -------------------------------------------------------------------------------

@pytest.mark.parametrize("score", [
    "-1", "0", "6", "11", "abc", "", " ", "1e309", "1e1", "5.0", "NaN", "inf", "-0x1",
    "9" * 5000, "1" + "0" * 30, str(2 ** 63), str(-(2 ** 63) - 1), "5\x00", "\x00", "５５",
])
def test_bad_scores_are_400_and_count_nothing(survey, score):
    response = _client().post(_path(survey), {"score": score, "comment": "x"})
    assert response.status_code == 400, score
    assert b"Pick a score from 1 to 5" in response.content
    survey.refresh_from_db()
    assert survey.answered_at is None and _answers(survey) == 0


def test_missing_score_is_400(survey):
    assert _client().post(_path(survey), {"comment": "no score"}).status_code == 400
    assert _client().post(_path(survey), {}).status_code == 400
    survey.refresh_from_db()
    assert survey.answered_at is None


@pytest.mark.parametrize("kind,low,high", [("csat", 1, 5), ("ces", 1, 7), ("nps", 0, 10)])
def test_each_scale_takes_its_bounds_and_refuses_one_beyond(conversation, agent, kind, low, high):
    for bad in (low - 1, high + 1):
        survey = surveys.survey_send(conversation=conversation, actor=agent, kind=kind)
        assert _client().post(_path(survey), {"score": str(bad)}).status_code == 400
    for good in (low, high):
        survey = surveys.survey_send(conversation=conversation, actor=agent, kind=kind)
        assert _client().post(_path(survey), {"score": str(good)}).status_code == 200
        survey.refresh_from_db()
        assert survey.score == good and _answers(survey) == 1


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(score=st.one_of(st.text(max_size=40), st.integers().map(str), st.floats().map(str)))
def test_any_score_text_is_answered_or_refused(survey, score):
    """Whatever arrives as a score: 200 with 1-5 stored, or a 400; never a 500."""
    Survey.objects.filter(pk=survey.pk).update(answered_at=None, score=None)
    MetricEvent.objects.filter(data__survey_id=survey.pk).delete()
    response = _client().post(_path(survey), {"score": score})
    assert response.status_code in (200, 400)
    survey.refresh_from_db()
    if response.status_code == 200:
        assert 1 <= survey.score <= 5 and _answers(survey) == 1
    else:
        assert survey.answered_at is None and _answers(survey) == 0


# --- comments -----------------------------------------------------------------------------

@pytest.mark.parametrize("comment,stored", [
    ("slow a\x00b", "slow a\ufffdb"),             # NUL: PostgreSQL text cannot hold it
    ("\x00" * 10, "\ufffd" * 10),
])
def test_nul_in_comment_is_stored_as_replacement_character(survey, comment, stored):
    response = _client().post(_path(survey), {"score": "4", "comment": comment})
    assert response.status_code == 200
    survey.refresh_from_db()
    assert survey.score == 4 and survey.comment == stored and _answers(survey) == 1


def test_lone_surrogate_in_comment_never_reaches_the_database(survey):
    # percent-encoded on the wire (how a browser or script would send it)
    body = "score=4&comment=a%ED%A0%80b%00c"
    response = _client().post(_path(survey), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    survey.refresh_from_db()
    assert "\x00" not in survey.comment and survey.comment.startswith("a") and survey.comment.endswith("c")
    survey.comment.encode("utf-8")  # storable, printable


def test_multipart_comment_with_nul_and_surrogate(survey):
    body = ("--B\r\nContent-Disposition: form-data; name=\"score\"\r\n\r\n3\r\n"
            "--B\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n").encode() + \
        b"x\x00\xed\xa0\x80y" + b"\r\n--B--\r\n"
    response = _client().post(_path(survey), body, content_type="multipart/form-data; boundary=B")
    assert response.status_code == 200
    survey.refresh_from_db()
    assert survey.score == 3 and "\x00" not in survey.comment


def test_huge_comment_is_kept_to_the_form_limit(survey):
    response = _client().post(_path(survey), {"score": "5", "comment": "é" * 100_000})
    assert response.status_code == 200
    survey.refresh_from_db()
    assert survey.comment == "é" * 2000 and _answers(survey) == 1


def test_script_in_comment_is_stored_as_text_and_never_rendered_raw(survey, client, supervisor):
    response = _client().post(_path(survey), {"score": "2", "comment": "<script>alert(1)</script>"})
    assert response.status_code == 200 and b"<script>alert(1)" not in response.content
    survey.refresh_from_db()
    assert survey.comment == "<script>alert(1)</script>"
    # the answer shows in the thread's timeline, escaped wherever it is shown
    client.force_login(supervisor)
    page = client.get(f"/inbox/c/{survey.conversation_id}/")
    assert page.status_code == 200 and b"<script>alert(1)" not in page.content


# --- one answer ---------------------------------------------------------------------------

def test_two_identical_posts_count_one_answer(survey):
    path = _path(survey)
    first = _client().post(path, {"score": "4", "comment": "ok"})
    second = _client().post(path, {"score": "4", "comment": "ok"})
    assert first.status_code == 200 and second.status_code == 200
    assert b"recorded" in second.content
    third = _client().post(path, {"score": "1", "comment": "changed my mind"})
    assert third.status_code == 200 and b"recorded" in third.content
    survey.refresh_from_db()
    assert survey.score == 4 and survey.comment == "ok"
    assert _answers(survey) == 1
    assert MetricEvent.objects.filter(kind="csat_answered", data__survey_id=survey.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_posts_count_one_answer(queue, agent):
    conversation = ConversationFactory(queue=queue, assignee=agent, status="resolved")
    survey = surveys.survey_send(conversation=conversation, actor=agent)
    path = _path(survey)
    barrier = threading.Barrier(4)
    statuses = []

    def submit():
        try:
            barrier.wait()
            statuses.append(_client().post(path, {"score": "5", "comment": "double click"}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the losers of the race see the same thanks, not an error
    assert statuses == [200] * 4
    assert _answers(survey) == 1
    assert MetricEvent.objects.filter(kind="csat_answered", data__survey_id=survey.pk).count() == 1


def test_survey_answered_after_the_conversation_reopened(survey, conversation, supervisor):
    """The answer rates the cycle the link was sent for: it is recorded once, and
    neither changes the reopened conversation nor breaks its thread or the reports."""
    from apps.inbox.services import conversation_status_set

    conversation_status_set(conversation=conversation, status="open", actor=supervisor)
    response = _client().post(_path(survey), {"score": "1", "comment": "still broken"})
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == "open"
    survey.refresh_from_db()
    assert survey.score == 1 and _answers(survey) == 1
    rollups.rollups_apply()
    client = Client()
    client.force_login(supervisor)
    assert client.get(f"/inbox/c/{conversation.pk}/").status_code == 200
    assert client.get("/reports/experience/").status_code == 200
    again = _client().post(_path(survey), {"score": "5"})
    assert again.status_code == 200 and _answers(survey) == 1
