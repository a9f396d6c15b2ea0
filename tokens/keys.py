"""Signing keys: generation, rotation and the per-process key ring (RFC 7517, RFC 9068 §2.1).

Keys live in the database so that every process and machine signs with the same
one.  Each process parses them once and keeps them in memory; every
``SIGNING_KEY_REFRESH_SECONDS`` it asks the database (one small query) whether the
published set changed, so a rotation made anywhere is picked up within seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from joserfc.jwk import ECKey, OKPKey, RSAKey

from clients import audit, registry, versions
from clients.models import Client
from tokens.models import SigningKey

log = logging.getLogger("authserver.keys")

JoseKey = ECKey | RSAKey | OKPKey
_KEY_CLASSES: dict[str, type[ECKey] | type[RSAKey] | type[OKPKey]] = {
    "ES256": ECKey, "RS256": RSAKey, "EdDSA": OKPKey,
}
# Tokens may be checked a little after `exp` by servers with skewed clocks.
PUBLISH_LEEWAY = timedelta(minutes=5)


def _generate_private_key(algorithm: str) -> Any:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {algorithm!r}")


def _passphrase() -> bytes | None:
    return settings.SIGNING_KEY_ENCRYPTION_KEY.encode("utf-8") or None


def key_generate(*, algorithm: str, now: datetime) -> SigningKey:
    """A new, unsaved signing key; its ``kid`` is the RFC 7638 thumbprint."""
    private = _generate_private_key(algorithm)
    passphrase = _passphrase()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption(),
    ).decode("ascii")
    jose_key = _KEY_CLASSES[algorithm].import_key(pem, password=passphrase)
    kid = jose_key.thumbprint()
    public_jwk = {**jose_key.as_dict(private=False), "kid": kid, "alg": algorithm, "use": "sig"}
    return SigningKey(
        kid=kid, algorithm=algorithm, private_key=pem, encrypted=passphrase is not None,
        public_jwk=public_jwk, created=now,
    )


def max_token_lifetime() -> timedelta:
    """The longest lifetime any token may have now: server default or a client's TTL."""
    longest_client = Client.objects.aggregate(longest=Max("access_token_ttl"))["longest"] or 0
    return timedelta(seconds=max(settings.ACCESS_TOKEN_TTL, longest_client))


def key_rotate(*, algorithm: str | None = None, now: datetime | None = None) -> SigningKey:
    """Make a new key the signer; keep the old ones published until their tokens expire.

    Two rotations at once cannot leave two signers: the unique ``signing`` column
    makes the later one fail, and it is retried once against the new state.
    """
    now = now or timezone.now()
    new_key = key_generate(algorithm=algorithm or settings.SIGNING_ALG, now=now)
    for attempt in (1, 2):
        try:
            _replace_signer(new_key, now)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    keyring_invalidate()
    audit.record("signing_key.rotated", target=new_key.kid, changes={"algorithm": new_key.algorithm})
    return new_key


@transaction.atomic
def _replace_signer(new_key: SigningKey, now: datetime) -> None:
    # Resource servers may see the old key's tokens until they expire, and workers
    # may sign with it for up to one refresh interval after this commit.
    published_until = (
        now + max_token_lifetime() + timedelta(seconds=settings.SIGNING_KEY_REFRESH_SECONDS) + PUBLISH_LEEWAY
    )
    list(SigningKey.objects.select_for_update().signers())
    SigningKey.objects.signers().update(signing=None, rotated_out=now, published_until=published_until)
    new_key.save()


def _create_first_key(now: datetime) -> None:
    """Create a signer if none exists; a concurrent creator elsewhere wins harmlessly."""
    if SigningKey.objects.signers().exists():
        return
    try:
        with transaction.atomic():
            key = key_generate(algorithm=settings.SIGNING_ALG, now=now)
            key.save()
            audit.record("signing_key.created", target=key.kid, changes={"algorithm": key.algorithm})
    except IntegrityError:
        return


def key_prune(*, now: datetime | None = None) -> int:
    """Delete keys that are no longer published (every token they signed has expired)."""
    now = now or timezone.now()
    retired = SigningKey.objects.filter(published_until__lte=now)
    kids = list(retired.values_list("kid", flat=True))
    deleted, _ = retired.delete()
    for kid in kids:
        audit.record("signing_key.deleted", target=kid)
    return deleted


@dataclass(frozen=True)
class LoadedKey:
    """A parsed key: private for the signer, public for every other published key."""

    kid: str
    algorithm: str
    key: JoseKey
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class KeyRing:
    signer: LoadedKey
    by_kid: dict[str, LoadedKey]
    jwks_json: bytes


class _KeyRingCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ring: KeyRing | None = None
        self.fingerprint: tuple[Any, ...] = ()
        self.checked_at = 0.0
        self.key_version: int | None = None
        self.parsed: dict[str, LoadedKey] = {}


_cache = _KeyRingCache()


def keyring_invalidate() -> None:
    """Forget the cached ring in this process (other processes refresh on their own)."""
    _cache.checked_at = 0.0


def _load_signer(row: SigningKey) -> LoadedKey:
    password = _passphrase() if row.encrypted else None
    key = _KEY_CLASSES[row.algorithm].import_key(row.private_key, password=password)
    return LoadedKey(kid=row.kid, algorithm=row.algorithm, key=key, public_jwk=row.public_jwk)


def _load_public(row: SigningKey) -> LoadedKey:
    key = _KEY_CLASSES[row.algorithm].import_key(row.public_jwk)
    return LoadedKey(kid=row.kid, algorithm=row.algorithm, key=key, public_jwk=row.public_jwk)


def _published_rows(now: datetime) -> list[tuple[Any, ...]]:
    return list(SigningKey.objects.published(now).values_list("id", "kid", "signing"))


def _build(cache: _KeyRingCache, now: datetime) -> None:
    rows = _published_rows(now)
    if not any(signing for _, _, signing in rows):
        _create_first_key(now)
        rows = _published_rows(now)
    fingerprint = tuple(rows)
    if cache.ring is not None and fingerprint == cache.fingerprint:
        return
    signer_id, signer_kid, _ = next(row for row in rows if row[2])
    parsed = {kid: key for kid, key in cache.parsed.items() if kid != signer_kid or key.key.is_private}
    needed = [row_id for row_id, kid, _ in rows if kid not in parsed]
    for row in SigningKey.objects.filter(id__in=needed):
        parsed[row.kid] = _load_signer(row) if row.id == signer_id else _load_public(row)
    by_kid = {kid: parsed[kid] for _, kid, _ in rows}
    jwks = {"keys": [key.public_jwk for key in by_kid.values()]}
    cache.parsed = by_kid
    cache.ring = KeyRing(
        signer=by_kid[signer_kid], by_kid=by_kid,
        jwks_json=json.dumps(jwks, separators=(",", ":")).encode("ascii"),
    )
    cache.fingerprint = fingerprint


def keyring() -> KeyRing:
    """The signer and published keys, parsed once per process and refreshed every few seconds.

    A rotation also moves the signing-key version (``clients.versions``), which the
    token endpoint reads on every request: a process that has seen a newer version
    looks again at once, so a key rotated on any node signs everywhere on the next
    token.  Only the signer's private key is ever decrypted.  Creates the first key when
    there is none.  If the database cannot be reached for a refresh, the ring
    already held keeps serving (and the next call tries again).
    """
    cache = _cache
    seen = registry.observed_key_version()
    if (
        cache.ring is not None
        and seen == cache.key_version
        and time.monotonic() - cache.checked_at < settings.SIGNING_KEY_REFRESH_SECONDS
    ):
        return cache.ring
    with cache.lock:
        try:
            _build(cache, timezone.now())
        except DatabaseError:
            if cache.ring is None:
                raise
            log.warning("signing keys not refreshed: database unavailable; serving the cached key set")
            return cache.ring
        cache.checked_at = time.monotonic()
        cache.key_version = seen
        assert cache.ring is not None
        return cache.ring


def install_triggers(*, using: str, **_: Any) -> None:
    """``post_migrate``: make every write to the signing keys move their version."""
    versions.install(versions.watched_models((SigningKey,), column=versions.SIGNING_KEYS), using=using)
