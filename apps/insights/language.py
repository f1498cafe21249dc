"""Language of short social text, offline, with lingua."""
from __future__ import annotations

import re
from functools import lru_cache

from lingua import Language, LanguageDetectorBuilder

from .bounds import analyzed_part

LANGUAGES = [
    Language.ENGLISH, Language.SPANISH, Language.FRENCH, Language.GERMAN, Language.PORTUGUESE,
    Language.ITALIAN, Language.DUTCH, Language.JAPANESE, Language.TURKISH, Language.ARABIC,
    Language.HINDI, Language.INDONESIAN, Language.KOREAN, Language.CHINESE, Language.RUSSIAN, Language.POLISH,
]
# Below this confidence another language is not claimed: on two or three words
# lingua guesses ("refund pls" -> German 0.23, "lol" -> Indonesian 0.27), and a
# wrong guess would leave an English complaint unscored. Measured in docs/sentiment.md.
MIN_CONFIDENCE = 0.4
_NOISE = re.compile(r"(@\w+|https?://\S+|#)")


@lru_cache(maxsize=1)
def _detector():
    return LanguageDetectorBuilder.from_languages(*LANGUAGES).build()


# A network's tag that names no language: X's "und" (undetermined), "zxx" (no linguistic
# content), "qme"/"qht"/"qam"... (media, hashtags, mentions only: BCP 47 private use q*).
_NO_LANGUAGE = {"und", "zxx", "mul", "mis"}
# X still sends ISO 639's withdrawn codes for a few languages.
_WITHDRAWN = {"in": "id", "iw": "he", "ji": "yi"}
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def language_from_tag(tag: str) -> str:
    """The ISO 639 code a network's language tag names ("en-GB" -> "en", "in" -> "id"), or ""
    when it names none or is not a tag. The network saw the whole post, its author's other
    posts and their settings; on a tweet of a few words its tag is a better guess than ours,
    and trusting it skips lingua, ~15% of a routing worker's CPU (docs/performance.md)."""
    if not tag or len(tag) > 35 or not _TAG.fullmatch(tag):
        return ""
    primary = tag.split("-")[0].split("_")[0].lower()
    if primary in _NO_LANGUAGE or primary.startswith("q"):
        return ""
    return _WITHDRAWN.get(primary, primary)


def language_detect(text: str) -> str:
    """ISO 639-1 code, or "" when the text is too short or ambiguous to tell.
    Read from the text's first ANALYZED_CHARS characters (bounds.py)."""
    clean = _NOISE.sub(" ", analyzed_part(text)).strip()
    if len(clean) < 3:
        return ""
    detector = _detector()
    language = detector.detect_language_of(clean)  # the fast path: most messages are English
    if language is None:
        return ""
    if language != Language.ENGLISH and detector.compute_language_confidence(clean, language) < MIN_CONFIDENCE:
        return ""
    return language.iso_code_639_1.name.lower()
