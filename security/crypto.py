"""Encryption at rest: authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) with key rotation (issue 12).

Keys come from ``DATA_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first): values are encrypted under the
newest and decrypted under any, so a new key is added in front, ``manage.py rotate_encryption_keys`` re-encrypts
every stored value under it, and then the old key can be dropped. Generate a key with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.

Unset, one key is derived from ``SECRET_KEY`` (with a warning) for the embedded default, DEBUG and tests; production
must set it: ``check --deploy`` reports security.E001 while it is unset with DEBUG off.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

logger = logging.getLogger(__name__)


class DecryptionError(ValueError):
    """A stored value that none of the configured keys decrypts (a key was dropped too early, or it was altered)."""


def derived_dev_key(secret_key: str) -> str:
    """The embedded default's key: derived from SECRET_KEY, so it is stable but as secret as that key."""
    digest = hashlib.sha256(b"dataops-data-encryption-v1:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    """The keys in force, newest first.

    Unset, a key derived from SECRET_KEY stands in (logged as a warning) so the embedded default, DEBUG and test
    processes work; ``manage.py check --deploy`` fails (security.E001) while DATA_ENCRYPTION_KEYS is unset with
    DEBUG off, so a production deployment cannot go out on the derived key.
    """
    keys = tuple(k.strip() for k in getattr(settings, "DATA_ENCRYPTION_KEYS", []) or [] if k.strip())
    if keys:
        return keys
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS is required (no SECRET_KEY to derive a development key)")
    return (derived_dev_key(settings.SECRET_KEY),)


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for i, key in enumerate(keys):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"DATA_ENCRYPTION_KEYS entry {i + 1} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    if not getattr(settings, "DATA_ENCRYPTION_KEYS", None):
        logger.warning("DATA_ENCRYPTION_KEYS unset: using a key derived from SECRET_KEY (check --deploy refuses this)")
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    return _fernet(configured_keys())


def encrypt(value: str | bytes) -> str:
    """``value`` encrypted under the newest key, as a url-safe text token."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    return fernet().encrypt(data).decode()


def decrypt(token: str) -> str:
    """The text ``token`` holds (any configured key), or :class:`DecryptionError`."""
    try:
        return fernet().decrypt(token.encode() if isinstance(token, str) else token).decode()
    except InvalidToken:
        raise DecryptionError(
            "no configured key decrypts this value (key dropped too early, or value altered)"
        ) from None


def decrypt_bytes(token: str | bytes) -> bytes:
    try:
        return fernet().decrypt(token.encode() if isinstance(token, str) else token)
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


def encrypt_bytes(data: bytes) -> bytes:
    return fernet().encrypt(data)


def under_newest_key(token: str) -> bool:
    """Whether ``token`` is already encrypted under the newest key (rotation can skip it)."""
    try:
        Fernet(configured_keys()[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(token: str) -> str:
    """``token`` re-encrypted under the newest key (MultiFernet.rotate)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


class EncryptedTextField(models.TextField):
    """Text stored encrypted (a Fernet token); read back in clear. Not searchable or orderable by value."""

    encrypted = True

    def serialize_clear(self, value: Any) -> str:
        return str(value)

    def parse_clear(self, text: str) -> Any:
        return text

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt(self.serialize_clear(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return self.parse_clear(decrypt(value))


class EncryptedJSONField(EncryptedTextField):
    """A JSON value stored encrypted: the model sees dicts and lists, the database a Fernet token."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        super().__init__(*args, **kwargs)

    def serialize_clear(self, value: Any) -> str:
        return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)

    def parse_clear(self, text: str) -> Any:
        return json.loads(text)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def value_to_string(self, obj: Any) -> str:
        return self.serialize_clear(self.value_from_object(obj))


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every installed model with encrypted fields, and those fields' names (what rotation walks)."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]
        if names:
            found.append((model, names))
    return found
