"""EncryptedJSONField: connector credentials encrypted at rest with Fernet.

The key(s) come from settings.FIELD_ENCRYPTION_KEYS (the environment); the first
key encrypts, every key decrypts, so keys can be rotated without downtime."""
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in settings.FIELD_ENCRYPTION_KEYS])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must hold Fernet keys") from exc


def encrypt_value(value) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_value(token: str):
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured("credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


class EncryptedJSONField(models.TextField):
    """Stores a JSON value as a Fernet token; the plain value never reaches the DB."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return decrypt_value(value)

    def to_python(self, value):
        if isinstance(value, (dict, list)) or value is None:
            return value or {}
        try:
            return decrypt_value(value)
        except ImproperlyConfigured:
            return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        return encrypt_value(value)

    def value_to_string(self, obj):
        return ""  # never serialise secrets (dumpdata, admin history)
