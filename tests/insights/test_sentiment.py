"""Sentiment as a customer-care reader would judge it, and the accuracy floor
against human ratings (plain VADER's figures on the same tweets, README of
shared/fixtures/sentiment)."""
from pathlib import Path

import pytest

from apps.insights.evaluation import gold_load, sentiment_evaluate
from apps.insights.language import language_detect
from apps.insights.services import message_analyze
from apps.insights.sentiment import sentiment_score
from tests.factories import MessageFactory

GOLD = Path(__file__).parent / "data" / "tweets_GroundTruth_odd.tsv"


def test_accuracy_does_not_fall_below_plain_vader():
    result = sentiment_evaluate(gold_load(GOLD))
    assert result.n == 2100
    # plain vaderSentiment 3.3.2 on this file: r 0.877, 3-class 0.929, pos/neg 0.967
    assert result.pearson_r >= 0.8767
    assert result.accuracy_3class >= 0.9290
    assert result.accuracy_posneg >= 0.9673


@pytest.mark.parametrize("text", [
    "never arrived, awful service",  # plain VADER: +0.357 ("never" flipped "awful")
    "My package never arrived",
    "Still waiting for my refund, this is ridiculous",
    "no response from support after 3 days",
    "I was charged twice!!",
    "outage again?",
    "😡😡 my order",
    "@acme 👎",
])
def test_complaints_read_negative(text):
    assert sentiment_score(text).label == "negative"


@pytest.mark.parametrize("text", [
    "Thanks @acme, sorted it within minutes 👍",
    "thanks so much, you guys rock 🙏",
    "Not bad at all, thanks",
])
def test_praise_reads_positive(text):
    assert sentiment_score(text).label == "positive"


def test_neutral_question_stays_neutral():
    assert sentiment_score("@acme what are your opening hours on Sunday").label == "neutral"


@pytest.mark.django_db
def test_non_english_message_gets_language_and_no_english_score():
    message = MessageFactory(text="Mi pedido nunca llegó, el servicio es horrible y nadie responde")
    message_analyze(message=message)
    message.refresh_from_db()
    assert message.language == "es"
    assert message.sentiment is None
    assert message.sentiment_label == "not_scored"


@pytest.mark.django_db
def test_english_message_is_scored():
    message = MessageFactory(text="@acme never arrived, awful service")
    message_analyze(message=message)
    message.refresh_from_db()
    assert message.language == "en"
    assert message.sentiment < -0.05
    assert message.sentiment_label == "negative"


def test_language_ignores_handles_and_links():
    assert language_detect("@acme https://t.co/xyz") == ""
    assert language_detect("Bonjour, ma commande n'est jamais arrivée") == "fr"


@pytest.mark.parametrize("text", ["@acme refund pls", "lol", "@acme DM sent", "@acme order #4411 pls"])
def test_short_english_is_not_claimed_for_another_language(text):
    # lingua alone guesses German / Indonesian / French here, which would leave them unscored
    assert language_detect(text) in ("en", "")
    assert sentiment_score(text).label in ("neutral", "negative", "positive")


@pytest.mark.parametrize("text, code", [("@acme merci beaucoup", "fr"), ("@acme danke", "de"),
                                        ("@acme gracias por nada", "es"), ("@acme obrigado", "pt")])
def test_short_foreign_text_is_still_recognised(text, code):
    assert language_detect(text) == code


def test_few_rated_english_tweets_are_taken_for_another_language():
    rows = gold_load(GOLD)
    claimed = [text for _r, text in rows if language_detect(text) not in ("en", "")]
    assert len(claimed) <= 25  # 17 of 2,100 measured (lingua alone: 52); see docs/sentiment.md
