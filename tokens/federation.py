"""Workload identity federation: a workload authenticates as one of our clients with the JWT
its platform gave it, a Kubernetes service-account token, a CI job's OIDC token or a SPIFFE
JWT-SVID (DESIGN §9.2).  No secret exists anywhere.

This is a deliberate profile of RFC 7523 §2.2, as Keycloak's federated client authentication
is: there ``sub`` is the client id; here ``client_id`` names our client and ``sub`` the
workload, whose issuer is not the client.  The checks, each failure an ``AssertionRejected``
(``invalid_client`` for the caller, the reason in the log):

1. the JWT's ``iss`` is a trusted issuer (a SPIFFE JWT-SVID without ``iss``: the trust domain
   of its ``sub``), enabled, and named by one of this client's federated identities;
2. its signature verifies with the issuer's keys (its static ``jwks``, its ``jwks_uri``, or
   the ``jwks_uri`` of its discovery document), the algorithms of ``private_key_jwt``;
3. ``aud`` holds one of the issuer's accepted audiences (default: our ``ISSUER``);
4. ``exp`` has not passed, ``iat`` and ``nbf`` are not in the future (30 s leeway), and
   ``exp - iat`` (``exp`` minus now without ``iat``) is within the issuer's lifetime;
5. ``sub`` matches the identity's pattern and each of its claims equals the token's.

Platforms hand a workload the same token for its lifetime (kubelets and CI runners reuse
them), so it may be presented again until it expires: no ``jti`` check here.  Another
client's identity never matches, whatever the ``sub``: only this client's are read.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from clients import registry
from clients.jwks import SIGNING_ALGORITHMS, PublicKey
from clients.models import SPIFFE_SCHEME
from clients.registry import ClientRecord, IssuerRecord
from tokens import remote_keys
from tokens.private_key_jwt import (
    Assertion,
    AssertionRejected,
    KeysUnavailable,
    audiences,
    check_signature,
    check_times,
    registered_keys,
)

SPIFFE_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
_MISSING = object()


@dataclass(frozen=True)
class Workload:
    """Who proved itself: the trusted issuer (its name) and the workload's ``sub``."""

    trusted_issuer: str
    subject: str


# The SPIFFE ID of the SPIFFE-ID spec §2: a lower-case trust domain, a path of segments of
# letters, digits and . - _, nothing else (no port, user info, query or fragment).
_SPIFFE_ID = re.compile(r"spiffe://([a-z0-9._-]{1,255})((?:/[A-Za-z0-9._-]+)+)")


def trust_domain(spiffe_id: str) -> str | None:
    """``spiffe://<trust domain>`` of a well-formed SPIFFE ID, else ``None``."""
    match = _SPIFFE_ID.fullmatch(spiffe_id)
    if match is None or set(match.group(2).split("/")) & {".", ".."}:
        return None
    return SPIFFE_SCHEME + match.group(1)


def issuer_of(assertion: Assertion) -> str | None:
    """The token's ``iss``; for a SPIFFE JWT-SVID without one, ``spiffe://<trust domain of sub>``."""
    if assertion.issuer is not None:
        return assertion.issuer
    subject = assertion.subject
    return trust_domain(subject) if subject is not None else None


def _glob(pattern: str, text: str) -> bool:
    """``pattern``'s ``*`` matches one or more characters of ``text`` (which holds no ``:``).

    Leftmost matching of the literal pieces in turn is exact for such patterns and linear in
    the text, where a regular expression with several stars can backtrack for seconds.
    """
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return pattern == text
    head, *middle, tail = pieces
    if not text.startswith(head):
        return False
    at = len(head)
    for piece in middle:
        found = text.find(piece, at + 1)  # the star before it takes at least one character
        if found < 0:
            return False
        at = found + len(piece)
    return text.endswith(tail) and len(text) - len(tail) >= at + 1


def subject_matches(pattern: str, subject: str) -> bool:
    """An identity's subject: exact, or with ``*`` matching one or more characters other than ``:``."""
    pattern_parts, subject_parts = pattern.split(":"), subject.split(":")
    return len(pattern_parts) == len(subject_parts) and all(
        _glob(part, text) for part, text in zip(pattern_parts, subject_parts, strict=True)
    )


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name, or by RFC 6901 JSON Pointer when ``name`` starts with ``/``."""
    if not name.startswith("/"):
        return claims.get(name, _MISSING)
    value: Any = claims
    for token in name[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and token.isdigit() and (token == "0" or not token.startswith("0")):
            value = value[int(token)] if int(token) < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def claims_match(expected: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    """Each expected claim equals the token's, type included (``"true"`` is not ``true``)."""
    for name, value in expected.items():
        actual = claim(claims, name)
        if actual is _MISSING or type(actual) is not type(value) or actual != value:
            return False
    return True


def issuer_keys(issuer: IssuerRecord, *, kid: str | None) -> tuple[PublicKey, ...]:
    """The issuer's keys: static, at its ``jwks_uri``, or at its discovery document's."""
    if issuer.jwks:
        return registered_keys(issuer.jwks)
    try:
        jwks_uri = issuer.jwks_uri or remote_keys.discovered_jwks_uri(issuer.issuer)
        return remote_keys.keys(jwks_uri, kid=kid)
    except remote_keys.KeysUnavailable:
        raise KeysUnavailable(issuer.name) from None


def authenticate(assertion: Assertion, *, client: ClientRecord) -> Workload:
    """Run checks 1 to 5 for ``client``; raises ``AssertionRejected`` or ``KeysUnavailable``."""
    identities = client.federated_identities
    if not identities:
        raise AssertionRejected("the client has no federated identities")
    iss = issuer_of(assertion)
    if iss is None:
        raise AssertionRejected("no iss")
    issuer = registry.trusted_issuer(iss)
    if issuer is None:
        raise AssertionRejected(f"issuer {iss[:200]!r} is not a trusted issuer")
    if not issuer.enabled:
        raise AssertionRejected(f"trusted issuer {issuer.name} is disabled")
    mine = [identity for identity in identities if identity.get("trusted_issuer") == issuer.name]
    if not mine:
        raise AssertionRejected(f"trusted issuer {issuer.name} is named by none of the client's identities")
    kid = assertion.header.get("kid")
    check_signature(assertion, issuer_keys(issuer, kid=kid if isinstance(kid, str) else None),
                    allowed=SIGNING_ALGORITHMS)
    claims = assertion.claims
    accepted = issuer.audiences or (settings.ISSUER,)
    if not set(audiences(claims)) & set(accepted):
        raise AssertionRejected("aud holds none of the issuer's accepted audiences")
    check_times(claims, now=time.time(), max_lifetime=issuer.max_token_lifetime, lifetime_from_iat=True)
    subject = assertion.subject
    if subject is None:
        raise AssertionRejected("no sub")
    if issuer.issuer.startswith(SPIFFE_SCHEME) and trust_domain(subject) != issuer.issuer:
        raise AssertionRejected("sub is not a SPIFFE ID of the issuer's trust domain")
    for identity in mine:
        if subject_matches(identity["subject"], subject) and claims_match(identity.get("claims") or {}, claims):
            return Workload(trusted_issuer=issuer.name, subject=subject)
    raise AssertionRejected(f"sub {json.dumps(subject)[:200]} or its claims match none of the client's identities")
