"""``private_key_jwt``: a client proves itself with a JWT signed by its private key
(RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9, draft-ietf-oauth-rfc7523bis; DESIGN §9.1).

The checks, in order, each failure an ``AssertionRejected`` whose reason goes to the log
(the caller sees ``invalid_client``):

1. a compact JWS whose ``alg`` is one of ES256, ES384, PS256, RS256, EdDSA (never
   ``none`` or HMAC), and the client's ``token_endpoint_auth_signing_alg`` if it set one;
2. a key of the client fits: by ``kid``, else each key fitting the ``alg``; the client's
   ``jwks``, or its ``jwks_uri`` (``tokens.remote_keys``);
3. the signature verifies with that key;
4. ``iss`` and ``sub`` are the client id;
5. ``aud`` names the issuer, the token endpoint or the endpoint called (a string, or one
   value of an array); with ``CLIENT_ASSERTION_AUDIENCE=issuer`` only the issuer;
6. ``exp`` present, not passed, and at most ``CLIENT_ASSERTION_MAX_LIFETIME`` ahead;
   ``iat`` and ``nbf`` not in the future; 30 s of leeway each;
7. ``jti`` present and never seen before: recorded in the shared state (every worker and
   node) until ``exp`` plus the leeway, so of two requests with one assertion exactly one
   passes.  It is checked last, so an assertion refused for another reason is not spent.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from joserfc import jws
from joserfc.errors import JoseError
from redis.exceptions import RedisError

from clients.jwks import SIGNING_ALGORITHMS, InvalidKeySet, PublicKey, parse_key_set
from clients.registry import ClientRecord
from tokens import paths, remote_keys
from tokens.shared_state import hashed, shared_state

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY_SECONDS = 30
MAX_ASSERTION_LENGTH = 8192
MAX_JTI_LENGTH = 256


class AssertionRejected(Exception):
    """The assertion does not prove the client; ``reason`` is for operators only."""

    def __init__(self, reason: str, *, replayed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.replayed = replayed


class KeysUnavailable(Exception):
    """The client's keys cannot be had now (its ``jwks_uri`` never answered): 503."""


class ReplayCheckUnavailable(Exception):
    """The shared state cannot record the ``jti``: refused, since single use is unprovable."""


@dataclass(frozen=True)
class Assertion:
    """A JWT as presented, its header and claims decoded but not yet trusted."""

    token: str
    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None


def _segment(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def parse(token: str) -> Assertion:
    """Decode a compact JWS's header and claims (RFC 7515 §7.1) without trusting them."""
    parts = token.split(".")
    if len(token) > MAX_ASSERTION_LENGTH or len(parts) != 3 or not parts[0] or not parts[1]:
        raise AssertionRejected("malformed assertion")
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, UnicodeError, binascii.Error, RecursionError):  # nesting deep enough to recurse: hostile
        raise AssertionRejected("malformed assertion") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRejected("malformed assertion")
    return Assertion(token=token, header=header, claims=claims)


@functools.lru_cache(maxsize=1024)
def _parsed(jwks_json: str) -> tuple[PublicKey, ...]:
    try:
        return parse_key_set(json.loads(jwks_json))
    except InvalidKeySet:
        return ()  # the model refuses such a set; one written around it authenticates nothing


def registered_keys(jwks: Mapping[str, Any]) -> tuple[PublicKey, ...]:
    """A registered JWK Set's keys, parsed once per process (keyed by its canonical JSON)."""
    return _parsed(json.dumps(jwks, sort_keys=True))


def client_keys(client: ClientRecord, *, kid: str | None) -> tuple[PublicKey, ...]:
    """The client's public keys: its ``jwks``, or those published at its ``jwks_uri``."""
    if client.jwks:
        return registered_keys(client.jwks)
    if client.jwks_uri:
        try:
            return remote_keys.keys(client.jwks_uri, kid=kid)
        except remote_keys.KeysUnavailable:
            raise KeysUnavailable(client.client_id) from None
    return ()


# RFC 9864's fully-specified name for EdDSA over Ed25519, which openid-client 6 and newer
# libraries write: the same algorithm as "EdDSA" with an Ed25519 key.
ALIASES = {"Ed25519": "EdDSA"}


def check_signature(assertion: Assertion, keys: tuple[PublicKey, ...], *, allowed: tuple[str, ...]) -> None:
    """Steps 1 to 3: an allowed ``alg``, a fitting key, a good signature."""
    written = assertion.header.get("alg")
    alg = ALIASES.get(written, written) if isinstance(written, str) else written
    if not isinstance(alg, str) or alg not in allowed:
        raise AssertionRejected(f"alg {str(written)[:20]!r} not allowed")
    kid = assertion.header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRejected("malformed assertion")
    fitting = [key for key in keys if alg in key.algorithms and (kid is None or key.kid == kid)]
    if not fitting:
        raise AssertionRejected(f"no key fits (kid {str(kid)[:64]!r}, alg {alg})")
    for key in fitting:
        try:
            jws.deserialize_compact(assertion.token, key.key, algorithms=[str(written)])
        except (JoseError, ValueError, TypeError):
            continue
        return
    raise AssertionRejected("bad signature")


# NumericDate (RFC 7519 §2) as far as it can sensibly go: up to the year 36812.
_MAX_NUMERIC_DATE = 2**40


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim, or ``None``; JSON's NaN and Infinity, huge or negative ones are refused."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_NUMERIC_DATE:
        raise AssertionRejected(f"{name} is not a number")
    return float(value)


def check_times(claims: Mapping[str, Any], *, now: float, max_lifetime: int, lifetime_from_iat: bool) -> float:
    """``exp`` present and not passed, within ``max_lifetime``; ``iat`` and ``nbf`` not in
    the future; each with the leeway.  Returns ``exp``.

    The lifetime is ``exp - now`` (§9.1), or ``exp - iat`` when ``lifetime_from_iat``
    and ``iat`` is present (§9.2, a workload's token).
    """
    exp = _number(claims, "exp")
    if exp is None:
        raise AssertionRejected("no exp")
    if exp + LEEWAY_SECONDS <= now:
        raise AssertionRejected("expired")
    iat = _number(claims, "iat")
    nbf = _number(claims, "nbf")
    if iat is not None and iat > now + LEEWAY_SECONDS:
        raise AssertionRejected("iat in the future")
    if nbf is not None and nbf > now + LEEWAY_SECONDS:
        raise AssertionRejected("not yet valid (nbf)")
    start = iat if lifetime_from_iat and iat is not None else now
    if exp - start > max_lifetime + LEEWAY_SECONDS:
        raise AssertionRejected(f"lives too long ({int(exp - start)} s)")
    return exp


def audiences(claims: Mapping[str, Any]) -> list[str]:
    """``aud`` as a list (RFC 7519 §4.1.3: a string or an array of strings); [] if malformed."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(value, str) for value in aud):
        return aud
    return []


def check_audience(claims: Mapping[str, Any], *, endpoint: str | None) -> None:
    """Step 5 (RFC 7523 §3 item 3, OIDC Core §9, rfc7523bis)."""
    issuer: str = settings.ISSUER
    values = audiences(claims)
    if settings.CLIENT_ASSERTION_AUDIENCE == "issuer":
        if values != [issuer]:
            raise AssertionRejected("aud is not the issuer alone")
        return
    for value in values:
        if value == issuer or paths.is_url_of(value, paths.TOKEN, issuer=issuer):
            return
        if endpoint is not None and paths.is_url_of(value, endpoint, issuer=issuer):
            return
    raise AssertionRejected("aud names neither this issuer nor this endpoint")


def spend_jti(claims: Mapping[str, Any], *, client_id: str, exp: float, now: float) -> None:
    """Step 7: record the ``jti`` in the shared state; refuse one recorded already."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise AssertionRejected("no jti")
    key = hashed("assertion-jti", f"{client_id}\x00{jti}")
    try:
        first = shared_state().add_once(key, until=exp + LEEWAY_SECONDS, now=now)
    except (DatabaseError, OSError, ConnectionError, RedisError) as error:
        raise ReplayCheckUnavailable(type(error).__name__) from None
    if not first:
        raise AssertionRejected("assertion replayed (jti seen before)", replayed=True)


def verify(assertion: Assertion, *, client: ClientRecord, endpoint: str | None) -> None:
    """Run steps 1 to 7 for ``client``; raises ``AssertionRejected``, ``KeysUnavailable``
    or ``ReplayCheckUnavailable``."""
    client_id = client.client_id
    allowed: tuple[str, ...] = SIGNING_ALGORITHMS
    if client.token_endpoint_auth_signing_alg:
        allowed = (client.token_endpoint_auth_signing_alg,)
    kid = assertion.header.get("kid")
    keys = client_keys(client, kid=kid if isinstance(kid, str) else None)
    check_signature(assertion, keys, allowed=allowed)
    claims = assertion.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRejected("iss and sub must both be the client id")
    check_audience(claims, endpoint=endpoint)
    now = time.time()
    exp = check_times(claims, now=now, max_lifetime=settings.CLIENT_ASSERTION_MAX_LIFETIME, lifetime_from_iat=False)
    spend_jti(claims, client_id=client_id, exp=exp, now=now)
