"""Issuing access tokens: the domain function every caller uses."""

from __future__ import annotations

import base64
import functools
import json
import logging
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from django.conf import settings

from clients import usage
from tokens.claims import Grant, TokenSubject, access_token_claims
from tokens.keys import LoadedKey, keyring

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


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=16)
def _header_segment(algorithm: str, kid: str) -> bytes:
    """RFC 7515 §7.1's first part, the encoded protected header: the same for every token of a key."""
    return _b64url(json.dumps({"alg": algorithm, "typ": JWT_TYP, "kid": kid}, separators=(",", ":")).encode())


# The signature schemes, made once: they hold no key and no state.
_ES256 = ec.ECDSA(hashes.SHA256())
_PKCS1V15, _SHA256 = padding.PKCS1v15(), hashes.SHA256()


def sign_compact(signer: LoadedKey, payload: bytes) -> str:
    """The JWS compact serialization (RFC 7515 §7.1) of ``payload`` under the signer's key.

    Signed with ``cryptography`` directly (RFC 7518 §3.3 RS256, §3.4 ES256 as raw ``r || s``,
    RFC 8037 §3.1 EdDSA) and the header encoded once per key: joserfc's general serializer
    checked and re-encoded the same header on every token (docs/performance.md, issue 17).
    Every verifier, joserfc's included, reads the result as it read joserfc's own.
    """
    signing_input = _header_segment(signer.algorithm, signer.kid) + b"." + _b64url(payload)
    key = signer.key.raw_value
    if isinstance(key, ec.EllipticCurvePrivateKey):  # ES256 (P-256)
        r, s = decode_dss_signature(key.sign(signing_input, _ES256))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif isinstance(key, rsa.RSAPrivateKey):  # RS256
        signature = key.sign(signing_input, _PKCS1V15, _SHA256)
    elif isinstance(key, ed25519.Ed25519PrivateKey):  # EdDSA
        signature = key.sign(signing_input)
    else:
        raise TypeError(f"no signing for a {type(key).__name__} ({signer.algorithm})")
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


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
    token = sign_compact(signer, json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    usage.token_issued(client.client_id)
    log.info(
        "token issued client_id=%r scope=%r aud=%r jti=%s",
        client.client_id, claims.get("scope", ""), claims["aud"], jti,
    )
    return IssuedToken(
        access_token=token, expires_in=expires_in, scope=" ".join(grant.scopes), jti=jti, kid=signer.kid,
        token_type="DPoP" if grant.cnf and "jkt" in grant.cnf else TOKEN_TYPE,
    )
