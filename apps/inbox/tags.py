"""What a tag name may be: one rule, for the page, the API and routing rules alike.

Letters, digits, spaces and a little punctuation; no commas (the page's tag box splits on
them), nothing that reads as markup, 64 characters at most (the column's length). A name
that breaks the rule is refused with a message saying why, never cut or cleaned silently."""
import re

from apps.core.errors import DomainError

TAG_NAME_MAX_LENGTH = 64
TAG_NAME_RE = re.compile(r"\w[\w .:/&+#'-]*")
TAG_NAME_RULE = (f"a tag is letters, digits, spaces and . : / & + # ' - (no commas), "
                 f"{TAG_NAME_MAX_LENGTH} characters at most")


def _shown(name: str) -> str:
    return name if len(name) <= 24 else name[:24] + "…"


def tag_name_check(raw) -> str:
    """The name with its outer spaces trimmed, or DomainError saying what is wrong with it."""
    if not isinstance(raw, str):
        raise DomainError(f"A tag must be text: {TAG_NAME_RULE}.")
    name = raw.strip(" ")
    if not name:
        raise DomainError(f"A tag cannot be empty: {TAG_NAME_RULE}.")
    if len(name) > TAG_NAME_MAX_LENGTH:
        raise DomainError(f"The tag “{_shown(name)}” is {len(name)} characters long: {TAG_NAME_RULE}.")
    if not TAG_NAME_RE.fullmatch(name):
        raise DomainError(f"The tag “{_shown(name)}” is not allowed: {TAG_NAME_RULE}.")
    return name


def tag_name_clean(raw) -> str:
    """A valid name as it is stored: inner runs of spaces made one, lower-case."""
    return re.sub(" {2,}", " ", tag_name_check(raw)).lower()


def tag_names_parse(tags) -> list[str]:
    """A list of names, or the page's comma-separated text (empty pieces between commas
    skipped), cleaned and without repeats. Refuses the whole set if one name breaks the rule."""
    if isinstance(tags, str):
        tags = [part for part in tags.split(",") if part.strip(" ")]
    names = []
    for raw in tags or []:
        name = tag_name_clean(raw)
        if name not in names:
            names.append(name)
    return names
