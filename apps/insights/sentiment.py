"""Sentiment of social text: VADER compound score and label (DESIGN.md thresholds)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@dataclass(frozen=True)
class Sentiment:
    compound: float | None
    label: str  # positive | neutral | negative | not_scored


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def label_for(compound: float | None) -> str:
    if compound is None:
        return "not_scored"
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def sentiment_score(text: str) -> Sentiment:
    compound = round(_analyzer().polarity_scores(text or "")["compound"], 4)
    return Sentiment(compound, label_for(compound))
