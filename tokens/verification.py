"""Verifying our own access tokens (RFC 9068 §4): for bearer authentication of APIs (RFC 6750),
introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from joserfc import jws
from joserfc.errors import JoseError

from clients.models import Client
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
    client: Client
    claims: dict[str, Any]

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
    if not isinstance(claims.get("jti"), str) or RevokedToken.objects.filter(jti=claims["jti"]).exists():
        raise InvalidToken("revoked")
    client = Client.objects.filter(client_id=claims.get("client_id"), enabled=True).first()
    if client is None:
        raise InvalidToken("client unknown or disabled")
    return VerifiedToken(client=client, claims=claims)
