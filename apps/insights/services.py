"""Scores inbound messages: language first, then sentiment for English only
(VADER's lexicon is English; another language gets `not_scored`, not a wrong score)."""
from apps.inbox.models import Message

from .language import language_detect
from .sentiment import Sentiment, sentiment_score

SCORED_LANGUAGES = {"en", ""}


def message_analyze(*, message: Message) -> Message:
    message.language = language_detect(message.text)
    result = sentiment_score(message.text) if message.language in SCORED_LANGUAGES else Sentiment(None, "not_scored")
    message.sentiment, message.sentiment_label = result.compound, result.label
    message.save(update_fields=["language", "sentiment", "sentiment_label", "updated_at"])
    return message
