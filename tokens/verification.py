"""Verifying our own access tokens (RFC 9068 §4) and API keys (DESIGN §9.5): for bearer
authentication of APIs (RFC 6750), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from joserfc import jws
from joserfc.errors import JoseError

from authserver import dbread
from clients import registry
from clients import secrets as client_secrets
from clients.models import CLIENT_ID_PATTERN, Client
from clients.registry import ApiKeyRecord, ClientRecord
from tokens.claims import TENANT_SCOPE_PREFIX
from tokens.issuing import JWT_TYP
from tokens.keys import keyring
from tokens.models import RevokedToken

# Allowance for clocks of other nodes that issued the token slightly ahead of ours.
CLOCK_SKEW_SECONDS = 30
# Pass as ``audience`` to accept a token whatever its audience (introspection, revocation).
ANY_AUDIENCE = "*any*"


class InvalidToken(Exception):
    """The token is not one this server accepts; the message is for logs, never for callers."""


@dataclass(frozen=True)
class VerifiedToken:
    """A verified access token or API key (``api_key`` set); ``client`` is the registry's
    snapshot of its client (``clients.registry.ClientRecord``: ``client_id`` and settings)."""

    client: Client | ClientRecord
    claims: dict[str, Any]
    api_key: ApiKeyRecord | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope", "")).split())

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []


def verify_access_token(token: str, *, audience: str | None = None, now: int | None = None) -> VerifiedToken:
    """Check signature (any published key), ``typ``, ``iss``, ``exp``, ``aud``, that the
    token is not revoked and that its client still exists and is enabled; raise
    ``InvalidToken`` otherwise.

    ``audience`` defaults to the issuer itself (this server's own APIs).
    """
    now = int(time.time()) if now is None else now
    try:
        compact = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as error:
        raise InvalidToken(f"malformed token: {type(error).__name__}") from None
    header = compact.protected
    if header.get("typ") != JWT_TYP:
        raise InvalidToken("typ is not at+jwt")
    key = keyring().by_kid.get(str(header.get("kid")))
    if key is None or header.get("alg") != key.algorithm:
        raise InvalidToken("unknown kid or wrong alg")
    try:
        if not jws.validate_compact(compact, key.key, algorithms=[key.algorithm]):
            raise InvalidToken("bad signature")
        claims = json.loads(compact.payload)
    except (JoseError, ValueError) as error:
        raise InvalidToken(f"bad signature or payload: {type(error).__name__}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("payload is not an object")
    if claims.get("iss") != settings.ISSUER:
        raise InvalidToken("wrong issuer")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or exp <= now - CLOCK_SKEW_SECONDS:
        raise InvalidToken("expired")
    if iat > now + CLOCK_SKEW_SECONDS:
        raise InvalidToken("issued in the future")
    if audience != ANY_AUDIENCE and (audience or settings.ISSUER) not in _audiences(claims):
        raise InvalidToken("wrong audience")
    if not isinstance(claims.get("jti"), str) or _is_revoked(claims["jti"]):
        raise InvalidToken("revoked")
    client_id = claims.get("client_id")
    client = (
        registry.client(client_id)
        if isinstance(client_id, str) and CLIENT_ID_PATTERN.fullmatch(client_id) else None
    )
    if client is None or not client.enabled:
        raise InvalidToken("client unknown or disabled")
    return VerifiedToken(client=client, claims=claims)


_REVOKED_SQL: str | None = None


def _is_revoked(jti: str) -> bool:
    """One primary-key-sized read on the driver's connection (``authserver.dbread``)."""
    global _REVOKED_SQL
    if _REVOKED_SQL is None:
        table = RevokedToken._meta.db_table
        _REVOKED_SQL = f'SELECT 1 FROM "{table}" WHERE "jti" = %s'  # noqa: S608 (a fixed name)
    return bool(dbread.read(_REVOKED_SQL, (jti,)))


def _still_allowed(client: ClientRecord, scope: str) -> bool:
    if scope.startswith(TENANT_SCOPE_PREFIX):
        return scope[len(TENANT_SCOPE_PREFIX):] in client.tenants
    return scope in client.allowed_scopes


def verify_api_key(key: str, *, now: datetime) -> VerifiedToken:
    """Check an API key (DESIGN §9.5): well formed (no query otherwise), one of the live
    keys of an enabled client in the registry snapshot (an unknown prefix costs the same
    HMAC comparison as a wrong key), not expired; raise ``InvalidToken`` otherwise.

    Its scope is what it was given and its client is still allowed, so narrowing a
    client's scopes narrows its keys.  The key's last use is recorded after the response.
    """
    if not client_secrets.is_api_key(key):
        raise InvalidToken("malformed API key")
    candidates = registry.api_key_candidates(client_secrets.secret_prefix(key))
    found = client_secrets.match_secret(key, candidates)
    if found is None:
        raise InvalidToken("unknown, revoked or wrong API key")
    if not found.is_live(now):
        raise InvalidToken("API key expired")
    client = found.client
    if not client.enabled:
        raise InvalidToken("client disabled")
    registry.note_api_key_use(found, now)
    claims = {
        "scope": " ".join(scope for scope in found.scopes if _still_allowed(client, scope)),
        "client_id": client.client_id,
        "sub": client.client_id,
        "exp": int(found.expires.timestamp()),
        "iat": int(found.created.timestamp()),
    }
    return VerifiedToken(client=client, claims=claims, api_key=found)


def verify_bearer(token: str, *, audience: str | None = None, now: datetime) -> VerifiedToken:
    """An API key or an access token, told apart by the key's marker (a JWT never has it)."""
    if client_secrets.looks_like_api_key(token):
        return verify_api_key(token, now=now)
    return verify_access_token(token, audience=audience)
