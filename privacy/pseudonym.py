"""Pseudonyms: keyed HMAC-SHA256 of personal identifiers, stable so that joins still work.

``pseudonymise("ann@example.com", domain="email")`` gives the same token everywhere (audit payloads, exports,
failing samples), so two records about one person can still be matched, while nobody without
``PSEUDONYM_KEY`` can go back from the token to the value or test a guess (unlike a plain hash of an e-mail).

Domains keep kinds of identifier apart (an e-mail and a customer id that happen to be equal give different
tokens). Values are normalised first: stripped, and e-mails lower-cased.

Key rotation: ``PSEUDONYM_KEY`` makes new tokens; the previous keys go to ``PSEUDONYM_OLD_KEYS``. Tokens are not
re-written (the audit chain cannot be), so after a rotation the same person has an old and a new token:
``pseudonym_candidates`` gives every token a value has under the current and old keys, which is how a
data-subject request still finds older records. Drop an old key only when nothing holding its tokens is kept.
Unset, the key is derived from ``DJANGO_SECRET_KEY`` (embedded default); production sets its own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from django.conf import settings

PREFIX = "pn_"
EMAIL = "email"
CUSTOMER_ID = "customer_id"
NAME = "name"
DOMAINS = (EMAIL, CUSTOMER_ID, NAME)
_TOKEN_HEX = 32  # 128 bits: collisions are out of reach for any realistic number of people


class PseudonymError(ValueError):
    """A pseudonym was asked for in an unknown domain."""


def _derived_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"dataops.privacy.pseudonym-key", hashlib.sha256).digest()


def pseudonym_keys() -> tuple[bytes, ...]:
    """The current key first, then the old ones (read per call: settings may change in tests)."""
    current = settings.PSEUDONYM_KEY.encode() if settings.PSEUDONYM_KEY else _derived_key()
    return (current, *(k.encode() for k in settings.PSEUDONYM_OLD_KEYS if k))


def normalise(value: object, *, domain: str) -> str:
    """The form a value is hashed in: stripped; e-mails lower-cased."""
    if domain not in DOMAINS:
        raise PseudonymError(f"unknown pseudonym domain {domain!r}; known: {', '.join(DOMAINS)}")
    text = str(value).strip()
    return text.lower() if domain == EMAIL else text


def _token(key: bytes, value: str, domain: str) -> str:
    digest = hmac.new(key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return f"{PREFIX}{domain}_{digest[:_TOKEN_HEX]}"


def pseudonymise(value: object, *, domain: str) -> str:
    """The stable pseudonym of ``value`` under the current key; an empty or missing value stays empty."""
    if value is None or not str(value).strip():
        normalise("", domain=domain)  # still refuse an unknown domain
        return ""
    return _token(pseudonym_keys()[0], normalise(value, domain=domain), domain)


def pseudonym_candidates(value: object, *, domain: str) -> list[str]:
    """Every pseudonym ``value`` has under the current and the old keys (to find records made before a rotation)."""
    if value is None or not str(value).strip():
        return []
    norm = normalise(value, domain=domain)
    return list(dict.fromkeys(_token(key, norm, domain) for key in pseudonym_keys()))


def pseudonymise_many(values: Iterable[object], *, domain: str) -> list[str]:
    """Pseudonyms of several values, in order, empty ones dropped."""
    return [p for p in (pseudonymise(v, domain=domain) for v in values) if p]


def is_pseudonym(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX) and any(
        value.startswith(f"{PREFIX}{d}_") for d in DOMAINS
    )


# A user's profile fields that are personal data, and the domain their pseudonym is taken in.
PERSONAL_PROFILE_FIELDS = {"email": EMAIL, "first_name": NAME, "last_name": NAME}


def audit_profile_changes(changes: dict[str, list[object]]) -> dict[str, list[object]]:
    """``{field: [before, after]}`` for an audit payload: personal fields (e-mail, names) as pseudonyms."""
    return {
        field: [pseudonymise(v, domain=PERSONAL_PROFILE_FIELDS[field]) for v in pair]
        if field in PERSONAL_PROFILE_FIELDS
        else pair
        for field, pair in changes.items()
    }


# Personal columns of datasets, when the classification registry (security app, issue 12) is not installed.
_FALLBACK_PERSONAL = {"sales.order_lines": ("customer_id", "customer_email")}


def _domain_of(column: str) -> str:
    name = column.lower()
    if "email" in name:
        return EMAIL
    if "customer" in name:
        return CUSTOMER_ID
    return NAME


def personal_domains(dataset: str) -> dict[str, str]:
    """``{column: pseudonym domain}`` for the dataset's personal columns (from the classification registry)."""
    try:
        from security.classification import personal_columns
    except ImportError:
        columns = list(_FALLBACK_PERSONAL.get(dataset, ()))
    else:
        columns = personal_columns(dataset)
    return {c: _domain_of(c) for c in columns}


def row_pseudonymise(dataset: str, row: dict[str, object]) -> dict[str, object]:
    """The row with its personal columns as pseudonyms (for exports: joins on them still work)."""
    domains = personal_domains(dataset)
    return {k: pseudonymise(v, domain=domains[k]) if k in domains and v is not None else v for k, v in row.items()}


def keys_pseudonymise(dataset: str, key_columns: tuple[str, ...] | list[str], keys: list[list[object]]) -> list:
    """Failing-row samples (one list of key values per row) with personal key columns as pseudonyms."""
    domains = personal_domains(dataset)
    positions = {i: domains[c] for i, c in enumerate(key_columns) if c in domains}
    if not positions:
        return keys
    return [[pseudonymise(v, domain=positions[i]) if i in positions and v is not None else v
             for i, v in enumerate(key)] for key in keys]  # fmt: skip
