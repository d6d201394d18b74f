"""Signatures that someone with database access alone cannot produce.

The hash chain (``hashing.py``) shows that rows were changed, but anyone can recompute it: an insider who edits
an event and re-hashes every later one with the project's own function gets a chain that checks out. So each
event, the chain head and each anchor also carry an HMAC-SHA256 under ``AUDIT_HMAC_KEY``, a key kept outside
the database. A re-hashed, inserted or forged event, or a head moved back, no longer has a valid signature.

Keys: ``AUDIT_HMAC_KEY`` signs; it and each of ``AUDIT_HMAC_OLD_KEYS`` verify (rotation). Unset, the key is
derived from ``SECRET_KEY`` so the embedded default works out of the box.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings


def _derived_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"dataops.audit.hmac-key", hashlib.sha256).digest()


def key_id_of(key: bytes) -> str:
    """A public name for a key (the start of its SHA-256): tells which key signed an anchor, reveals nothing."""
    return hashlib.sha256(key).hexdigest()[:12]


@dataclass(frozen=True)
class AuditSigner:
    """Signs with the current key; verifies with the current and the old ones."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_settings(cls) -> AuditSigner:
        """The signer of the configured keys (read once per use: settings may change in tests)."""
        current = settings.AUDIT_HMAC_KEY.encode() if settings.AUDIT_HMAC_KEY else _derived_key()
        old = tuple(k.encode() for k in settings.AUDIT_HMAC_OLD_KEYS if k)
        return cls(keys=(current, *old))

    @property
    def key_id(self) -> str:
        return key_id_of(self.keys[0])

    @staticmethod
    def _message(kind: str, *parts: object) -> bytes:
        return "|".join([kind, *(str(p) for p in parts)]).encode()

    def sign(self, kind: str, *parts: object) -> str:
        return hmac.new(self.keys[0], self._message(kind, *parts), hashlib.sha256).hexdigest()

    def valid(self, mac: str, kind: str, *parts: object) -> bool:
        if not mac:
            return False
        message = self._message(kind, *parts)
        return any(hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), mac) for key in self.keys)

    # One domain per kind of record, so one record's signature can never be replayed as another's.
    def event_mac(self, seq: int, digest: str) -> str:
        return self.sign("event", seq, digest)

    def event_valid(self, seq: int, digest: str, mac: str) -> bool:
        return self.valid(mac, "event", seq, digest)

    def head_mac(self, seq: int, digest: str) -> str:
        return self.sign("head", seq, digest)

    def head_valid(self, seq: int, digest: str, mac: str) -> bool:
        return self.valid(mac, "head", seq, digest)

    def anchor_mac(self, seq: int, digest: str, anchored_at: str) -> str:
        return self.sign("anchor", seq, digest, anchored_at)

    def anchor_valid(self, seq: int, digest: str, anchored_at: str, mac: str) -> bool:
        return self.valid(mac, "anchor", seq, digest, anchored_at)
