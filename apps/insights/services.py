"""Scores inbound messages: language first, then sentiment for English only
(VADER's lexicon is English; another language gets `not_scored`, not a wrong score)."""
from django.utils import timezone

from apps.core.db import rows_update
from apps.inbox.models import Message

from .language import language_detect
from .sentiment import Sentiment, sentiment_score

SCORED_LANGUAGES = {"en", ""}


FIELDS = ["language", "sentiment", "sentiment_label", "updated_at"]


def _score(message: Message) -> None:
    message.language = language_detect(message.text)
    result = sentiment_score(message.text) if message.language in SCORED_LANGUAGES else Sentiment(None, "not_scored")
    message.sentiment, message.sentiment_label = result.compound, result.label


def message_analyze(*, message: Message) -> Message:
    _score(message)
    message.save(update_fields=FIELDS)
    return message


def messages_analyze(*, messages: list[Message]) -> list[Message]:
    """message_analyze for a batch (routing): the same scores, one UPDATE."""
    if not messages:
        return messages
    now = timezone.now()
    for message in messages:
        _score(message)
        message.updated_at = now
    rows_update(messages, FIELDS)
    return messages
