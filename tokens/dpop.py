"""DPoP proofs at the token endpoint (RFC 9449 §4.3; DESIGN §9.3).

A client that sends one ``DPoP`` header proves it holds a private key; the token it gets is
bound to that key (``cnf.jkt``, RFC 9449 §6), so a stolen token is useless without it.  The
checks of §4.3, each failure ``invalid_dpop_proof`` 400:

1. exactly one ``DPoP`` header, a compact JWS with ``typ: dpop+jwt``;
2. an asymmetric ``alg`` we support, and a ``jwk`` header holding a public key only, which
   verifies the signature;
3. ``htm`` is the request's method and ``htu`` the URL called, under ``ISSUER`` (never the
   Host header), compared after RFC 3986 §6.2.2 normalisation and without query or fragment;
4. ``iat`` within 60 s of now;
5. with ``DPOP_NONCE`` on, ``nonce`` is one this server issued recently (else
   ``use_dpop_nonce`` with a fresh one in ``DPoP-Nonce``, §8);
6. ``jti`` never seen before, on any worker or node, for as long as a proof with that ``iat``
   could be accepted (``tokens.shared_state``: of two requests with one proof, one passes).

Nonces are stateless: an HMAC of the current five-minute window under a key derived from
``SECRET_KEY``, so every worker and node issues and accepts the same ones without sharing
state; one of the previous window is still accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import DatabaseError
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from redis.exceptions import RedisError

from clients.jwks import SIGNING_ALGORITHMS, InvalidKeySet, parse_key_set
from tokens.errors import ServiceUnavailableError
from tokens.private_key_jwt import ALIASES, AssertionRejected, parse
from tokens.shared_state import hashed, shared_state

PROOF_TYP = "dpop+jwt"
TOKEN_TYPE = "DPoP"
IAT_WINDOW_SECONDS = 60
NONCE_WINDOW_SECONDS = 300
MAX_JTI_LENGTH = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _ProofRegistry(JWSRegistry):
    # A proof's header carries its public key: an RSA one alone is over joserfc's default 512 bytes.
    max_header_length = 4096


_REGISTRY = _ProofRegistry(algorithms=[*SIGNING_ALGORITHMS, *ALIASES])


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 §5: the proof is missing where required, malformed or fails a check."""

    error = "invalid_dpop_proof"
    status_code = 400
    description = "The DPoP proof is invalid."


class UseDPoPNonceError(OAuth2Error):
    """RFC 9449 §8: the proof must carry the server's nonce; ``nonce`` is the one to use."""

    error = "use_dpop_nonce"
    status_code = 400
    description = "Authorization server requires nonce in DPoP proof."

    def __init__(self, *, nonce: str) -> None:
        super().__init__()
        self.dpop_nonce = nonce  # sent as DPoP-Nonce (tokens.errors.error_response)


@dataclass(frozen=True)
class Proof:
    """A verified proof: the RFC 7638 SHA-256 thumbprint of its key, for ``cnf.jkt``."""

    jkt: str


def normalized_url(url: str) -> str | None:
    """RFC 3986 §6.2.2: scheme and host in lower case, no default port, ``/`` for an empty
    path, no query or fragment; ``None`` when ``url`` is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def endpoint_url(path: str) -> str:
    """The URL of ``path`` under ``ISSUER`` (whose own path, if any, prefixes it)."""
    return normalized_url(settings.ISSUER.rstrip("/") + path) or ""


def _nonce_key() -> bytes:
    return hashlib.sha256(b"authserver dpop nonce\x00" + settings.SECRET_KEY.encode()).digest()


def _nonce_for(window: int) -> str:
    mac = hmac.new(_nonce_key(), window.to_bytes(8, "big"), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(window.to_bytes(8, "big") + mac).rstrip(b"=").decode("ascii")


def current_nonce(now: float) -> str:
    return _nonce_for(int(now // NONCE_WINDOW_SECONDS))


def nonce_is_fresh(nonce: object, now: float) -> bool:
    window = int(now // NONCE_WINDOW_SECONDS)
    return isinstance(nonce, str) and any(
        hmac.compare_digest(nonce, _nonce_for(candidate)) for candidate in (window, window - 1)
    )


def _fail(reason: str) -> InvalidDPoPProofError:
    return InvalidDPoPProofError(description=f"The DPoP proof is invalid: {reason}.")


def _public_key(jwk: object) -> Any:
    if not isinstance(jwk, dict):
        raise _fail("no jwk header")
    try:
        (key,) = parse_key_set({"keys": [jwk]})
    except InvalidKeySet as error:
        raise _fail("private key in jwk" if "private" in str(error) else "jwk is not a usable public key") from None
    return key


def access_token_hash(token: str) -> str:
    """``ath`` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII."""
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def verify_proof(
    header: str | None, *, method: str, path: str, now: float | None = None, access_token: str | None = None
) -> Proof | None:
    """Check the request's ``DPoP`` header (``None`` when there is none); raise
    ``InvalidDPoPProofError``, ``UseDPoPNonceError`` or ``ServiceUnavailableError``.

    With ``access_token`` (a protected resource, §7.1) the proof's ``ath`` must be its hash.
    """
    if header is None:
        return None
    now = time.time() if now is None else now
    value = header.strip()
    if "," in value or not value:  # a server joins repeated headers with commas; a JWS has none
        raise _fail("exactly one DPoP header is allowed")
    try:
        proof = parse(value)
    except AssertionRejected:
        raise _fail("not a JWT") from None
    if proof.header.get("typ") != PROOF_TYP:
        raise _fail("typ must be dpop+jwt")
    written = proof.header.get("alg")
    alg = ALIASES.get(written, written) if isinstance(written, str) else None
    if alg not in SIGNING_ALGORITHMS:
        raise _fail("unsupported alg")
    key = _public_key(proof.header.get("jwk"))
    if alg not in key.algorithms:
        raise _fail("alg does not fit the jwk")
    try:
        jws.deserialize_compact(value, key.key, algorithms=[str(written)], registry=_REGISTRY)
    except (JoseError, ValueError, TypeError):
        raise _fail("bad signature") from None
    claims = proof.claims
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise _fail("no jti")
    if claims.get("htm") != method:
        raise _fail("htm is not the request's method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalized_url(htu) != endpoint_url(path):
        raise _fail("htu is not this endpoint's URL")
    iat = claims.get("iat")
    if (
        isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat)
        or abs(now - iat) > IAT_WINDOW_SECONDS
    ):
        raise _fail("iat is not within 60 s of now")
    if access_token is not None and not hmac.compare_digest(
        str(claims.get("ath", "")), access_token_hash(access_token)
    ):
        raise _fail("ath is not the hash of this access token")
    if settings.DPOP_NONCE and not nonce_is_fresh(claims.get("nonce"), now):
        raise UseDPoPNonceError(nonce=current_nonce(now))
    jkt = key.thumbprint
    try:
        first = shared_state().add_once(
            hashed("dpop-jti", f"{jkt}\x00{jti}"), until=float(iat) + IAT_WINDOW_SECONDS + 1, now=now
        )
    except (DatabaseError, OSError, ConnectionError, RedisError):
        raise ServiceUnavailableError() from None
    if not first:
        raise _fail("jti seen before")
    return Proof(jkt=jkt)
