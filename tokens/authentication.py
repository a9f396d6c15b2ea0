"""Bearer authentication for DRF APIs with our own access tokens (RFC 6750).

Reusable by any Django REST framework API::

    from tokens.authentication import BearerTokenAuthentication, HasScope

    class InvoiceView(APIView):
        authentication_classes = [BearerTokenAuthentication]
        permission_classes = [HasScope.of("invoices:read")]

``request.user`` is a ``TokenUser`` (the calling client), ``request.auth`` the
``VerifiedToken``.  An API key (DESIGN §9.5) is accepted wherever an access token is,
with the same scope checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from clients.jwks import SIGNING_ALGORITHMS
from clients.models import Client
from clients.registry import ClientRecord
from tokens import dpop, mtls
from tokens.errors import ServiceUnavailableError
from tokens.verification import InvalidToken, VerifiedToken, verify_bearer

log = logging.getLogger("authserver.bearer")

REALM = "authserver"


@dataclass(frozen=True)
class TokenUser:
    """The client behind a bearer token, in the place Django expects a user (for an API
    key, the registry's snapshot of the client: no query)."""

    client: Client | ClientRecord
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_anonymous: bool = False

    @property
    def pk(self) -> str:
        return self.client.client_id

    def __str__(self) -> str:
        return f"client {self.client.client_id}"


class BearerTokenAuthentication(BaseAuthentication):
    """Accepts ``Authorization: Bearer <our JWT access token or API key>`` (RFC 6750 §2.1).

    A missing header leaves the request unauthenticated (other classes may try);
    a bad token is a 401 with ``error="invalid_token"`` (RFC 6750 §3.1).
    """

    audience: str | None = None  # None: the issuer, i.e. this server's own APIs

    def authenticate(self, request: Request) -> tuple[TokenUser, VerifiedToken] | None:
        scheme, _, token = get_authorization_header(request).partition(b" ")
        if scheme.lower() == b"dpop":
            return self._authenticate_dpop(request, token)
        if scheme.lower() != b"bearer":
            return None
        request._bearer_error = "invalid_token"  # type: ignore[attr-defined]
        try:
            verified = verify_bearer(token.strip().decode("ascii"), audience=self.audience, now=timezone.now())
        except (InvalidToken, UnicodeDecodeError) as error:
            log.info("bearer token refused: %s", error)
            raise AuthenticationFailed("The access token is invalid, expired or revoked.") from None
        cnf = verified.claims.get("cnf")
        if isinstance(cnf, dict) and "jkt" in cnf:
            # RFC 9449 §7.2: a DPoP-bound token is worthless as a bearer token, whoever holds it.
            log.info("bearer token refused: DPoP-bound token presented as Bearer")
            request._bearer_dpop = True  # type: ignore[attr-defined]
            raise AuthenticationFailed("This access token is DPoP-bound; present it with a DPoP proof.")
        _check_certificate_binding(request, verified)
        return TokenUser(verified.client), verified

    def _authenticate_dpop(self, request: Request, token: bytes) -> tuple[TokenUser, VerifiedToken]:
        """``Authorization: DPoP <token>`` with a ``DPoP`` proof of this request (RFC 9449 §7.1):
        its ``htm``, ``htu`` and ``ath``, by the key the token is bound to."""
        request._bearer_error = "invalid_token"  # type: ignore[attr-defined]
        request._bearer_dpop = True  # type: ignore[attr-defined]
        try:
            access_token = token.strip().decode("ascii")
            verified = verify_bearer(access_token, audience=self.audience, now=timezone.now())
            proof = dpop.verify_proof(
                request.META.get("HTTP_DPOP"), method=request.method or "", path=request.path_info,
                access_token=access_token,
            )
        except (InvalidToken, UnicodeDecodeError, dpop.InvalidDPoPProofError, dpop.UseDPoPNonceError) as error:
            log.info("DPoP token refused: %s", getattr(error, "description", None) or error)
            raise AuthenticationFailed("The DPoP-bound access token or its proof is invalid.") from None
        except ServiceUnavailableError:
            raise ProofCheckUnavailable() from None
        cnf = verified.claims.get("cnf")
        if proof is None or not isinstance(cnf, dict) or cnf.get("jkt") != proof.jkt:
            log.info("DPoP token refused: %s", "no proof" if proof is None else "proof by another key")
            raise AuthenticationFailed("The DPoP-bound access token or its proof is invalid.")
        _check_certificate_binding(request, verified)
        return TokenUser(verified.client), verified

    def authenticate_header(self, request: Request) -> str:
        error = getattr(request, "_bearer_error", None)
        challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
        if getattr(request, "_bearer_dpop", False):
            # RFC 9449 §7.1: say which scheme and algorithms would be accepted.
            challenge = f'DPoP realm="{REALM}", error="invalid_token", algs="{" ".join(SIGNING_ALGORITHMS)}"'
        return challenge


def _check_certificate_binding(request: Request, verified: VerifiedToken) -> None:
    """RFC 8705 §3: a certificate-bound token is accepted only over a connection presenting that
    certificate (as a trusted proxy forwards it); else 401 ``invalid_token``."""
    cnf = verified.claims.get("cnf")
    bound = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if bound is None:
        return
    forwarded = mtls.forwarded_certificate(request._request)
    try:
        presented = mtls.read(forwarded).thumbprint if forwarded is not None else None
    except mtls.CertificateRejected:
        presented = None
    if presented != bound:
        log.info("bearer token refused: certificate-bound token %s", "without a certificate" if presented is None
                 else "over another certificate")
        raise AuthenticationFailed("This access token is bound to a TLS client certificate this request lacks.")


class ProofCheckUnavailable(APIException):
    """503: the shared state that records used DPoP proofs cannot be reached, so single use is unprovable."""

    status_code = 503
    default_detail = "DPoP proofs cannot be checked now; retry shortly."
    default_code = "temporarily_unavailable"


class InsufficientScope(PermissionDenied):
    """403 with ``WWW-Authenticate: Bearer error="insufficient_scope"`` (RFC 6750 §3.1)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"The access token lacks the scope {scope}.")
        self.scope = scope
        # DRF's exception handler sends an exception's ``auth_header`` as WWW-Authenticate.
        self.auth_header = self.www_authenticate

    @property
    def www_authenticate(self) -> str:
        return f'Bearer realm="{REALM}", error="insufficient_scope", scope="{self.scope}"'


class HasScope(BasePermission):
    """Requires a bearer token carrying ``scope``, or a logged-in staff user (session)."""

    scope = ""

    @classmethod
    def of(cls, scope: str) -> type[HasScope]:
        return type(f"HasScope_{scope}", (cls,), {"scope": scope})

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, VerifiedToken):
            if self.scope not in request.auth.scopes:
                raise InsufficientScope(self.scope)
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.is_active)
