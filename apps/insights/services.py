"""Scores inbound messages: language first, then sentiment for English only
(VADER's lexicon is English; another language gets `not_scored`, not a wrong score).

A message is any model row with `text` and the FIELDS below (inbox.Message): insights
sits below the inbox in the layers (docs/architecture.md) and never imports it."""
from django.db.models import Model
from django.utils import timezone

from apps.core.db import rows_update

from .language import language_detect, language_from_tag
from .sentiment import Sentiment, sentiment_score

SCORED_LANGUAGES = {"en", ""}


FIELDS = ["language", "sentiment", "sentiment_label", "updated_at"]


def text_score(text: str, tag: str = "") -> tuple[str, float | None, str]:
    """(language, sentiment compound, sentiment label) of a message's text; no database.
    `tag`: the network's language tag for it, trusted when it names a language."""
    language = language_from_tag(tag) or language_detect(text)
    result = sentiment_score(text) if language in SCORED_LANGUAGES else Sentiment(None, "not_scored")
    return language, result.compound, result.label


def _score(message: Model, scores: dict | None = None) -> None:
    score = scores.get(message.pk) if scores else None
    message.language, message.sentiment, message.sentiment_label = score or text_score(message.text)


def message_analyze(*, message: Model) -> Model:
    _score(message)
    message.save(update_fields=FIELDS)
    return message


def messages_analyze(*, messages: list[Model], scores: dict | None = None) -> list[Model]:
    """message_analyze for a batch (routing): the same scores, one UPDATE.
    `scores` (message id -> text_score) were computed beforehand, outside the
    caller's locks; a message without one is scored here."""
    if not messages:
        return messages
    now = timezone.now()
    for message in messages:
        _score(message, scores)
        message.updated_at = now
    rows_update(messages, FIELDS)
    return messages
