"""Surveys (CSAT, CES, NPS): sent after a resolve as a private message carrying a signed link
(never posted publicly), answered once on the brand's survey page; both are metric events
(docs/reports.md, "Surveys")."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.contacts.models import Customer
from apps.core.errors import Conflict, DomainError
from apps.core.sanitize import text_clean
from apps.inbox.events import event_record
from apps.inbox.models import Conversation
from apps.inbox.sending import private_messages_missing
from apps.inbox.services import reply_create
from apps.inbox.signals import SurveyOutcome

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


def survey_held_back(*, conversation: Conversation, at) -> str:
    """Why no survey may go to this conversation's customer now, or "": the channel has no private
    messages, or the customer had a survey (of any kind, on any channel) within the channel
    account's limit (`survey_cap_days`; 0: no limit)."""
    account = conversation.channel_account
    missing = private_messages_missing(account)
    if missing:
        return missing
    days = account.survey_cap_days
    if not days:
        return ""
    last = (Survey.objects.filter(conversation__customer_id=conversation.customer_id,
                                  sent_at__gt=at - dt.timedelta(days=days))
            .order_by("-sent_at").values_list("sent_at", flat=True).first())
    if last is None:
        return ""
    local = timezone.localtime(last, _zone(account.time_zone))
    every = "every day" if days == 1 else f"every {days} days"
    return (f"this customer had a survey on {local:%Y-%m-%d %H:%M} {local.tzname()} "
            f"({account.name} sends at most one per customer {every})")


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return dt.timezone.utc


def _survey_send(*, conversation: Conversation, actor, kind: str, automatic: bool) -> tuple[Survey | None, str]:
    if kind not in Survey.SCALES:
        raise DomainError(f"Unknown survey kind {kind!r}.")
    sender = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        # One customer, one decision at a time: two resolves at once cannot both pass the limit (no key:
        # ingest's inserts that refer to the customer do not wait for it).
        list(Customer.objects.select_for_update(no_key=True).filter(pk=conversation.customer_id).values_list("pk"))
        now = timezone.now()
        held = survey_held_back(conversation=conversation, at=now)
        if held:
            event_record(conversation=conversation, kind="survey_not_sent", actor=sender, survey=kind, reason=held,
                         automatic=automatic)
            return None, held
        survey = Survey.objects.create(kind=kind, conversation=conversation, token=secrets.token_urlsafe(16),
                                       sent_by=sender, sent_at=now)
        message = reply_create(conversation=conversation, agent=actor, text=SURVEY_TEXT[kind].format(
            url=survey_url(survey)), private=True, is_bot=True)
        survey.message_id = message.pk
        survey.save(update_fields=["message_id"])
        conversation = Conversation.objects.select_related("queue", "channel_account").get(pk=conversation.pk)
        metric_event_emit(key=f"survey_sent:{survey.pk}", kind=f"{kind}_sent", occurred_at=now,
                          dims=conversation_dims(conversation), data={"survey_id": survey.pk})
        event_record(conversation=conversation, kind="survey_sent", actor=sender, survey=kind, survey_id=survey.pk,
                     automatic=automatic)
    return survey, ""


def survey_send(*, conversation: Conversation, actor, kind: str = "csat", automatic: bool = False) -> Survey | None:
    """Creates a survey and sends its link to the customer privately (a direct message, an
    email...) as an automatic (bot) message, so it never counts as a response. A survey is never
    posted publicly, nor sent to a customer who had one within the channel account's limit
    (`survey_cap_days`): then nothing is sent, the thread says "survey not sent: <why>" (a
    `survey_not_sent` event), and None is returned."""
    return _survey_send(conversation=conversation, actor=actor, kind=kind, automatic=automatic)[0]


def survey_for_resolve(*, conversation: Conversation, actor, kind: str, automatic: bool) -> SurveyOutcome:
    """The survey a resolve asked for (the agent's choice, or the channel's policy when
    `automatic`), as the inbox's SurveyOutcome: sent, or not and why."""
    survey, held = _survey_send(conversation=conversation, actor=actor, kind=kind, automatic=automatic)
    return SurveyOutcome(kind=kind, sent=survey is not None, reason=held)


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
