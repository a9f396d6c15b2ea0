"""Issuing access tokens: the domain function every caller uses."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from joserfc import jws

from clients import usage
from tokens.claims import Grant, TokenSubject, access_token_claims
from tokens.keys import keyring

log = logging.getLogger("authserver.tokens")

TOKEN_TYPE = "Bearer"
# RFC 9068 §2.1: the JOSE header's typ for JWT access tokens.
JWT_TYP = "at+jwt"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    jti: str
    kid: str
    token_type: str = "Bearer"  # "DPoP" for a DPoP-bound token (RFC 9449 §5)


def token_ttl(client: TokenSubject) -> int:
    return client.access_token_ttl or settings.ACCESS_TOKEN_TTL


def issue_access_token(*, client: TokenSubject, grant: Grant, now: int | None = None) -> IssuedToken:
    """Sign an RFC 9068 JWT access token for ``client`` with the current signing key."""
    issued_at = int(time.time()) if now is None else now
    expires_in = token_ttl(client)
    jti = secrets.token_urlsafe(16)
    signer = keyring().signer
    claims = access_token_claims(
        client=client, grant=grant, jti=jti, issued_at=issued_at, expires_in=expires_in
    )
    header = {"alg": signer.algorithm, "typ": JWT_TYP, "kid": signer.kid}
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    token = jws.serialize_compact(header, payload, signer.key, algorithms=[signer.algorithm])
    usage.token_issued(client.client_id)
    log.info(
        "token issued client_id=%r scope=%r aud=%r jti=%s",
        client.client_id, claims.get("scope", ""), claims["aud"], jti,
    )
    return IssuedToken(
        access_token=token, expires_in=expires_in, scope=" ".join(grant.scopes), jti=jti, kid=signer.kid,
        token_type="DPoP" if grant.cnf and "jkt" in grant.cnf else TOKEN_TYPE,
    )
