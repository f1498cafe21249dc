"""Sentiment of social text: VADER compound score and label (DESIGN.md thresholds).

Plain VADER, tuned for customer care (figures in docs/sentiment.md):
- negation stops at a clause boundary ("," or ";"): plain VADER reads
  "never arrived, awful service" as positive because "never" flips "awful";
- a customer-care lexicon: words and phrases that are neutral in everyday
  tweets but are complaints to a brand ("never arrived", "still waiting",
  "outage"), and words that are department names here ("support");
- emoji that VADER's emoji descriptions leave neutral (😡 "pouting face",
  👎 "thumbs down", 🙏 "folded hands").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText

from .bounds import ANALYZED_CHARS, analyzed_part

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
# A compound score is stored with this many decimals (reports add them up and read the sums on the
# same grid: apps/reports/metrics.py, mean_compound)
COMPOUND_DECIMALS = 4

# Single words: valence on VADER's -4..+4 scale. None removes a word whose
# everyday sentiment misleads in a message to a brand.
CARE_LEXICON: dict[str, float | None] = {
    "outage": -2.0, "outages": -2.0, "overcharged": -2.2, "unresponsive": -1.8, "ripoff": -2.5,
    "rip-off": -2.5, "crashed": -1.7, "crashes": -1.7, "crashing": -1.7, "glitch": -1.2, "glitches": -1.2,
    "laggy": -1.2, "refunded": 0.8, "unusable": -2.2, "scammed": -2.7, "incompetent": -2.4,
    "lawyer": -1.0, "lawsuit": -1.8,
    # "support" is mostly the team they write to here, not praise (VADER: +1.7)
    "support": 0.5,
}
# Phrases a bag of words misses; matched on the lowercased text, each adds one
# valence to the message (counted like a lexicon word).
CARE_PHRASES: dict[str, float] = {
    "never arrived": -2.2, "never received": -2.2, "never got": -1.8, "hasn't arrived": -2.0,
    "has not arrived": -2.0, "didn't arrive": -2.0, "did not arrive": -2.0, "not arrived": -2.0,
    "still waiting": -1.8, "still no": -1.5, "no response": -1.8, "no reply": -1.8, "no answer": -1.5,
    "not working": -2.0, "doesn't work": -2.0, "does not work": -2.0, "don't work": -2.0, "stopped working": -2.0,
    "isn't working": -2.0, "won't load": -1.8, "charged twice": -2.2, "double charged": -2.2,
    "waste of time": -2.2, "waste of money": -2.4, "on hold for": -1.6, "been waiting": -1.5,
    "cancel my": -1.5, "want my money back": -2.2, "want a refund": -1.8, "where is my": -1.2,
    "where's my": -1.2, "never again": -2.0, "worst customer service": -1.0, "thanks for nothing": -3.0,
    "sorted it": 1.5, "sorted out": 1.2, "problem solved": 2.0, "issue resolved": 2.0, "fixed it": 1.6,
    "quick response": 1.8, "great service": 0.8, "thank you so much": 0.6,
}
# Emoji -> a token carrying a valence (VADER's own descriptions of these score 0).
CARE_EMOJI: dict[str, float] = {
    "😡": -2.5, "🤬": -3.0, "😤": -1.8, "😠": -2.2, "👎": -2.0, "💔": -1.8, "🙄": -1.5, "😒": -1.5,
    "😑": -0.8, "😖": -1.8, "😣": -1.5, "🤦": -1.5, "🙏": 1.2, "👍": 1.5, "👏": 1.5, "💯": 1.2,
    "🥰": 2.5, "😃": 2.0, "🤩": 2.5, "💙": 2.0, "💚": 2.0, "💜": 2.0,
}
# Measured: breaking at "," and ";" is best on the gold set; sentence stops
# (". ! ?") cost accuracy there (tweets punctuate loosely).
CLAUSE_END = re.compile(r"\w[,;]+[\"')\]]*$")
_PHRASE_RE = re.compile("|".join(sorted((re.escape(p) for p in CARE_PHRASES), key=len, reverse=True)))


@dataclass(frozen=True)
class Sentiment:
    compound: float | None
    label: str  # positive | neutral | negative | not_scored


class _Words(list):
    """VADER's token list, plus the clause number of each token."""

    clause_ids: list[int]


class _CareSentiText(SentiText):
    def _words_and_emoticons(self):
        words = _Words(super()._words_and_emoticons())
        clause, ids = 0, []
        for raw in self.text.split():
            ids.append(clause)
            if CLAUSE_END.search(raw):  # "arrived," ends a clause; ";)" is not a word
                clause += 1
        words.clause_ids = ids
        return words


class CareSentimentAnalyzer(SentimentIntensityAnalyzer):
    def __init__(self):
        super().__init__()
        for word, valence in CARE_LEXICON.items():
            if valence is None:
                self.lexicon.pop(word, None)
            else:
                self.lexicon[word] = valence
        for i, (emoji, valence) in enumerate(CARE_EMOJI.items()):
            token = f"careemoji{i}"
            self.emojis[emoji] = token
            self.lexicon[token] = valence

    @staticmethod
    def _same_clause(words, j: int, i: int) -> bool:
        ids = getattr(words, "clause_ids", None)
        return ids is None or ids[j] == ids[i]

    @staticmethod
    def _window(words, i: int) -> tuple[list, int]:
        # VADER's negation and idiom checks read at most 3 words back and 2 ahead, but
        # lowercase the whole token list on every call: quadratic in the text (2,000
        # emoji took ~4 s). The same words around i give the same answer.
        start = max(0, i - 3)
        return list(words[start:i + 3]), i - start

    def _negation_check(self, valence, words_and_emoticons, start_i, i):
        # A negator in an earlier clause does not reach this word.
        if not self._same_clause(words_and_emoticons, i - (start_i + 1), i):
            return valence
        window, j = self._window(words_and_emoticons, i)
        return SentimentIntensityAnalyzer._negation_check(valence, window, start_i, j)

    def _special_idioms_check(self, valence, words_and_emoticons, i):
        window, j = self._window(words_and_emoticons, i)
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, j)

    def polarity_scores(self, text):
        # VADER's own loop, with the clause-aware token list and the care phrases.
        # Bounded again after emoji become words ("😀" -> "grinning face"): `_but_check`
        # is still quadratic in the number of words.
        text = self._emoji_to_words(analyzed_part(text))[:ANALYZED_CHARS]
        sentitext = _CareSentiText(text)
        sentiments = []
        words = sentitext.words_and_emoticons
        for i, item in enumerate(words):
            if item.lower() in BOOSTER_DICT or (
                i < len(words) - 1 and item.lower() == "kind" and words[i + 1].lower() == "of"
            ):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        sentiments = self._but_check(words, sentiments)
        sentiments.extend(CARE_PHRASES[m.group(0)] for m in _PHRASE_RE.finditer(text.lower()))
        return self.score_valence(sentiments, text)

    def _emoji_to_words(self, text: str) -> str:
        out, prev_space = [], True
        for ch in text:
            if ch in self.emojis:
                if not prev_space:
                    out.append(" ")
                out.append(self.emojis[ch])
                prev_space = False
            else:
                out.append(ch)
                prev_space = ch == " "
        return "".join(out).strip()


@lru_cache(maxsize=1)
def _analyzer() -> CareSentimentAnalyzer:
    return CareSentimentAnalyzer()


def label_for(compound: float | None) -> str:
    if compound is None:
        return "not_scored"
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def sentiment_score(text: str) -> Sentiment:
    """Of the text's first ANALYZED_CHARS characters (bounds.py)."""
    compound = round(_analyzer().polarity_scores(analyzed_part(text))["compound"], COMPOUND_DECIMALS)
    return Sentiment(compound, label_for(compound))
