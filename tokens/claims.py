"""What an access token says (RFC 9068 §2.2): its claims, scopes, audience, tenants and roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings

from clients.models import SCOPE_TOKEN_PATTERN
from clients.registry import ClientRecord
from tokens.errors import InvalidScopeError, InvalidTargetError

TENANT_SCOPE_PREFIX = "tenant:"


class TokenSubject(Protocol):
    """What signing needs of a client: a ``ClientRecord`` or a ``Client`` row."""

    @property
    def client_id(self) -> str: ...

    @property
    def access_token_ttl(self) -> int | None: ...


@dataclass(frozen=True)
class Grant:
    """What a client is granted by one token request."""

    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    tenants: tuple[str, ...]
    roles: tuple[str, ...]
    # RFC 7800 confirmation: {"jkt": ...} for a DPoP-bound token (RFC 9449 §6.1); None: a bearer token.
    cnf: dict[str, str] | None = None


def default_scopes(client: ClientRecord) -> list[str]:
    """RFC 6749 §3.3: with no scope requested, the client's default scopes (else all allowed)."""
    return list(client.default_scopes or client.allowed_scopes)


def check_scopes(client: ClientRecord, scopes: Sequence[str]) -> tuple[str, ...]:
    """Each requested scope must be well formed and allowed; ``tenant:<slug>`` must name
    a tenant of the client.  Returns the scopes without repeats, in request order."""
    for scope in scopes:
        if not SCOPE_TOKEN_PATTERN.fullmatch(scope):
            raise InvalidScopeError(description="The scope parameter is malformed.")
        if scope.startswith(TENANT_SCOPE_PREFIX):
            if scope[len(TENANT_SCOPE_PREFIX):] not in client.tenants:
                raise InvalidScopeError(description=f"Scope {scope} is not allowed for this client.")
        elif scope not in client.allowed_scopes:
            raise InvalidScopeError(description=f"Scope {scope} is not allowed for this client.")
    return tuple(dict.fromkeys(scopes))


def _is_absolute_uri(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and "#" not in value


def choose_audience(client: ClientRecord, resources: Sequence[str], audience: str | None) -> tuple[str, ...]:
    """RFC 8707 §2: each ``resource`` (and our ``audience``) must be allowed for the client.

    None requested: the client's first allowed audience, else the server default.
    """
    for resource in resources:
        if not _is_absolute_uri(resource):
            raise InvalidTargetError(description="A resource must be an absolute URI without a fragment.")
    requested = tuple(dict.fromkeys([*resources, *([audience] if audience else [])]))
    for value in requested:
        if value not in client.audiences:
            raise InvalidTargetError(description=f"Resource {value} is not allowed for this client.")
    if requested:
        return requested
    return (client.audiences[0],) if client.audiences else (settings.DEFAULT_AUDIENCE or settings.ISSUER,)


def tenants_and_roles(client: ClientRecord, scopes: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tenants and roles the token carries.

    ``tenant:<slug>`` scopes narrow the token to those tenants (and to the global
    roles plus the roles of those tenants); without them the token carries all of
    the client's tenants and roles.
    """
    asked = {s[len(TENANT_SCOPE_PREFIX):] for s in scopes if s.startswith(TENANT_SCOPE_PREFIX)}
    if not asked:
        return client.tenants, tuple(value for _, value in client.roles)
    return (
        tuple(slug for slug in client.tenants if slug in asked),
        tuple(value for tenant, value in client.roles if tenant is None or tenant in asked),
    )


def access_token_claims(
    *, client: TokenSubject, grant: Grant, jti: str, issued_at: int, expires_in: int
) -> dict[str, object]:
    """RFC 9068 §2.2 claims; ``exp - iat == expires_in`` exactly."""
    claims: dict[str, object] = {
        "iss": settings.ISSUER,
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": grant.audience[0] if len(grant.audience) == 1 else list(grant.audience),
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "jti": jti,
    }
    # RFC 6749 §3.3: a scope is one or more scope-tokens, so no scope means no claim.
    if grant.scopes:
        claims["scope"] = " ".join(grant.scopes)
    if grant.tenants:
        claims["tenants"] = list(grant.tenants)
    if grant.roles:
        claims["roles"] = list(grant.roles)
    if grant.cnf:
        claims["cnf"] = dict(grant.cnf)
    return claims
