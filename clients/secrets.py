"""Client secrets: how they are made, stored and checked (RFC 6749 §2.3.1; NIST SP 800-63B §5.1.1.2 for the keyed hash).

A secret is ``ascs_`` + 54 characters of base64url (320 random bits) + a
6-character checksum, e.g. ``ascs_Q2hv…x1Yk``.  The lead marker lets secret scanners
recognise a leaked one; the checksum (CRC-32, as GitHub's tokens use) lets the server
reject a mistyped one before any database work.  The alphabet ``[A-Za-z0-9_-]``
survives form-encoding unchanged, so Basic credentials work encoded or not.

Only a keyed hash is stored: HMAC-SHA-256 under ``SECRET_HASH_KEY``.  These are
high-entropy random strings, not passwords, so a fast keyed hash is as strong as a
slow one (NIST SP 800-63B §5.1.1.2 asks for slow hashing of *memorized* secrets) and
costs the token endpoint microseconds instead of hundreds of milliseconds.  A
database leak alone reveals nothing without the key, which lives outside it.

API keys (DESIGN §9.5) have the same shape under their own marker, ``asak_``: a
scanner tells a leaked key from a leaked secret, and neither passes for the other
(each check requires its own marker before the checksum is even computed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MARKER = "ascs_"
RANDOM_BYTES = 40
_BODY_LENGTH = 54  # len(base64url(40 bytes)) without padding
_CHECKSUM_LENGTH = 6
SECRET_LENGTH = len(MARKER) + _BODY_LENGTH + _CHECKSUM_LENGTH
PREFIX_LENGTH = 12
_SECRET_SHAPE = re.compile(rf"{MARKER}[A-Za-z0-9_-]{{{_BODY_LENGTH + _CHECKSUM_LENGTH}}}")
API_KEY_MARKER = "asak_"
API_KEY_LENGTH = len(API_KEY_MARKER) + _BODY_LENGTH + _CHECKSUM_LENGTH
_API_KEY_SHAPE = re.compile(rf"{API_KEY_MARKER}[A-Za-z0-9_-]{{{_BODY_LENGTH + _CHECKSUM_LENGTH}}}")

_CLIENT_ID_ALPHABET = string.ascii_lowercase + string.digits


def generate_client_id() -> str:
    """A random client identifier: 24 lowercase letters and digits (124 bits)."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(24))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _checksum(head: str) -> str:
    return _b64(binascii.crc32(head.encode("ascii")).to_bytes(4, "big"))


def _generate(marker: str) -> str:
    head = marker + _b64(secrets.token_bytes(RANDOM_BYTES))
    return head + _checksum(head)


def generate_secret() -> str:
    return _generate(MARKER)


def generate_api_key() -> str:
    """A new API key: ``asak_`` + 320 random bits + checksum (DESIGN §9.5)."""
    return _generate(API_KEY_MARKER)


def _has_checksum(value: str) -> bool:
    head, checksum = value[:-_CHECKSUM_LENGTH], value[-_CHECKSUM_LENGTH:]
    return hmac.compare_digest(_checksum(head), checksum)


def is_well_formed(secret: str) -> bool:
    """True when ``secret`` has a client secret's shape and a correct checksum (no database needed)."""
    return len(secret) == SECRET_LENGTH and bool(_SECRET_SHAPE.fullmatch(secret)) and _has_checksum(secret)


def is_api_key(value: str) -> bool:
    """True when ``value`` has an API key's shape and a correct checksum (no database needed)."""
    return len(value) == API_KEY_LENGTH and bool(_API_KEY_SHAPE.fullmatch(value)) and _has_checksum(value)


def looks_like_api_key(value: str) -> bool:
    """True when ``value`` carries the API key marker (well formed or not): it is never a JWT."""
    return value.startswith(API_KEY_MARKER)


def secret_prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]


@dataclass(frozen=True)
class HashKey:
    key_id: str
    key: bytes


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"authserver secret hash key id\x00" + key).hexdigest()[:16]


def _derive_from_secret_key(secret_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None,
        info=b"authserver client secret hash key",
    ).derive(secret_key.encode("utf-8"))


@lru_cache(maxsize=8)
def _hash_keys(current: str, old: tuple[str, ...], secret_key: str) -> tuple[HashKey, dict[str, HashKey]]:
    current_key = current.encode("utf-8") if current else _derive_from_secret_key(secret_key)
    keys = [current_key, *(k.encode("utf-8") for k in old if k)]
    by_id: dict[str, HashKey] = {}
    for key in keys:
        by_id.setdefault(_key_id(key), HashKey(_key_id(key), key))
    return HashKey(_key_id(current_key), current_key), by_id


def hash_keys() -> tuple[HashKey, dict[str, HashKey]]:
    """The current hash key and every accepted key by id, from settings at call time."""
    return _hash_keys(
        settings.SECRET_HASH_KEY, tuple(settings.SECRET_HASH_OLD_KEYS), settings.SECRET_KEY
    )


def hash_secret(secret: str, key: HashKey | None = None) -> tuple[str, str]:
    """Return ``(key_id, hex HMAC-SHA-256)`` of ``secret`` under ``key`` (default: current)."""
    if key is None:
        key = hash_keys()[0]
    return key.key_id, hmac.new(key.key, secret.encode("utf-8"), hashlib.sha256).hexdigest()


class StoredSecret(Protocol):
    @property
    def hash(self) -> str: ...

    @property
    def hash_key_id(self) -> str: ...


# Compared against when a client is unknown or has no live secret, so that those
# cases cost what a wrong secret costs.
_DUMMY_HASH = "0" * 64


S = TypeVar("S", bound=StoredSecret)


def match_secret(secret: str, candidates: Iterable[S]) -> S | None:
    """Return the candidate whose hash matches ``secret``, comparing in constant time.

    Every candidate is compared (no early exit), and an empty candidate list still
    costs one HMAC and one comparison.
    """
    current, keys = hash_keys()
    digests: dict[str, str] = {}
    found: S | None = None
    compared = False
    for candidate in candidates:
        key = keys.get(candidate.hash_key_id)
        if key is None:
            continue
        if key.key_id not in digests:
            digests[key.key_id] = hash_secret(secret, key)[1]
        compared = True
        if hmac.compare_digest(digests[key.key_id], candidate.hash) and found is None:
            found = candidate
    if not compared:
        hmac.compare_digest(hash_secret(secret, current)[1], _DUMMY_HASH)
    return found
