"""Language of short social text, offline, with lingua."""
from __future__ import annotations

from functools import lru_cache

from lingua import Language, LanguageDetectorBuilder

LANGUAGES = [
    Language.ENGLISH, Language.SPANISH, Language.FRENCH, Language.GERMAN, Language.PORTUGUESE,
    Language.ITALIAN, Language.DUTCH, Language.JAPANESE, Language.TURKISH, Language.ARABIC,
    Language.HINDI, Language.INDONESIAN, Language.KOREAN, Language.CHINESE, Language.RUSSIAN, Language.POLISH,
]


@lru_cache(maxsize=1)
def _detector():
    return LanguageDetectorBuilder.from_languages(*LANGUAGES).build()


def language_detect(text: str) -> str:
    """ISO 639-1 code, or "" when the text is too short or ambiguous to tell."""
    import re

    clean = re.sub(r"(@\w+|https?://\S+|#)", " ", text or "").strip()
    if len(clean) < 3:
        return ""
    lang = _detector().detect_language_of(clean)
    return lang.iso_code_639_1.name.lower() if lang else ""
