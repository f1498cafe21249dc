"""Surveys (CSAT, CES, NPS): sent after a resolve as a private message carrying a signed link
(never posted publicly), answered once on the brand's survey page; both are metric events
(docs/reports.md, "Surveys")."""
from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import Conflict, DomainError
from apps.core.sanitize import text_clean
from apps.inbox.events import event_record
from apps.inbox.models import Conversation
from apps.inbox.sending import private_messages_missing
from apps.inbox.services import reply_create

from .models import MetricEvent, Survey
from .services import conversation_dims, event_dims, metric_event_emit, rollups_apply_after_commit

log = logging.getLogger(__name__)
SURVEY_SALT = "reports.survey"


SURVEY_TEXT = {
    "csat": "How did we do? Rate this conversation from 1 to 5: {url}",
    "ces": "How easy was it to get help? Tell us (1-7): {url}",
    "nps": "How likely are you to recommend us (0-10)? {url}",
}


def survey_url(survey: Survey) -> str:
    signed = signing.dumps(survey.token, salt=SURVEY_SALT, compress=False)
    base = settings.SITE_URL.rstrip("/")
    return base + reverse("survey", kwargs={"token": signed})


def survey_from_signed(signed: str) -> Survey:
    max_age = getattr(settings, "REPORTS_SURVEY_MAX_AGE_DAYS", 30) * 86400
    try:
        token = signing.loads(signed, salt=SURVEY_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise DomainError("This survey link has expired.") from None
    except signing.BadSignature:
        raise Survey.DoesNotExist from None
    return Survey.objects.select_related("conversation").get(token=token)


def survey_send(*, conversation: Conversation, actor, kind: str = "csat") -> Survey | None:
    """Creates a survey and sends its link to the customer privately (a direct message, an
    email...) as an automatic (bot) message, so it never counts as a response. A survey is never
    posted publicly: where the channel has no private messages, nothing is sent, the thread says
    "survey not sent: <channel> has no private messages" (a `survey_not_sent` event), and None
    is returned."""
    if kind not in Survey.SCALES:
        raise DomainError(f"Unknown survey kind {kind!r}.")
    sender = actor if getattr(actor, "pk", None) else None
    missing = private_messages_missing(conversation.channel_account)
    if missing:
        event_record(conversation=conversation, kind="survey_not_sent", actor=sender, survey=kind, reason=missing)
        return None

    with transaction.atomic():
        now = timezone.now()
        survey = Survey.objects.create(kind=kind, conversation=conversation, token=secrets.token_urlsafe(16),
                                       sent_by=sender, sent_at=now)
        message = reply_create(conversation=conversation, agent=actor, text=SURVEY_TEXT[kind].format(
            url=survey_url(survey)), private=True, is_bot=True)
        survey.message_id = message.pk
        survey.save(update_fields=["message_id"])
        conversation = Conversation.objects.select_related("queue", "channel_account").get(pk=conversation.pk)
        metric_event_emit(key=f"survey_sent:{survey.pk}", kind=f"{kind}_sent", occurred_at=now,
                          dims=conversation_dims(conversation), data={"survey_id": survey.pk})
        event_record(conversation=conversation, kind="survey_sent", actor=actor if getattr(actor, "pk", None) else None,
                     survey=kind, survey_id=survey.pk)
    return survey


def survey_answer(*, survey: Survey, score, comment: str = "") -> Survey:
    """Records the one answer a survey takes."""
    low, high = Survey.SCALES[survey.kind]
    try:
        score = int(score)
    except (TypeError, ValueError):
        raise DomainError(f"Pick a score from {low} to {high}.") from None
    if not low <= score <= high:
        raise DomainError(f"Pick a score from {low} to {high}.")
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if survey.answered_at is not None:
            # A double-click's second request: the same thanks, nothing counted twice.
            raise Conflict("This survey was already answered. Thank you!")
        now = timezone.now()
        # A stranger's text: NUL / lone surrogates -> U+FFFD (PostgreSQL stores neither).
        survey.score, survey.answered_at = score, now
        survey.comment = text_clean((comment or "").strip()[:2000])
        survey.save(update_fields=["score", "comment", "answered_at"])
        conversation = Conversation.objects.select_related("queue", "channel_account").get(pk=survey.conversation_id)
        # credited where the survey was sent (its channel, queue, team, agent), as the "sent" count
        # the response rate divides by: a conversation moved since never takes an answer elsewhere
        sent = MetricEvent.objects.filter(key=f"survey_sent:{survey.pk}").first()
        dims = event_dims(sent) if sent is not None else conversation_dims(conversation)
        metric_event_emit(key=f"survey:{survey.pk}", kind=survey.kind, occurred_at=now, dims=dims, value=score,
                          data={"survey_id": survey.pk})
        # Response rate counts answers in the hour the survey was sent.
        metric_event_emit(key=f"survey_answered:{survey.pk}", kind=f"{survey.kind}_answered",
                          occurred_at=survey.sent_at, dims=dims, data={"survey_id": survey.pk})
        event_record(conversation=conversation, kind="survey_answered", survey=survey.kind, score=score)
    rollups_apply_after_commit()
    return survey
