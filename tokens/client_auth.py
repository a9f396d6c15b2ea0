"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3).

One small function per method reads the credentials (``presented_credentials`` picks
the one the request carries); ``authenticate_client`` checks them: a secret here, an
assertion in ``tokens.private_key_jwt``, a TLS client certificate in ``tokens.mtls``;
then the checks every method shares (enabled, method allowed, address allowed).  Callers
only ever learn "invalid_client"; the real reason goes to the log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from clients import registry, usage
from clients import secrets as client_secrets
from clients.models import CLIENT_ID_PATTERN, Client, TokenEndpointAuthMethod
from clients.registry import ClientRecord
from tokens import federation, mtls, paths, private_key_jwt, ratelimit
from tokens.addresses import IPAddress, address_allowed
from tokens.errors import (
    InvalidClientError,
    InvalidRequestError,
    ServiceUnavailableError,
    TooManyAttemptsError,
)
from tokens.form import FormRequest, single
from tokens.metrics import FailureReason, record_client_authentication_failure

log = logging.getLogger("authserver.client_auth")

BASIC = TokenEndpointAuthMethod.CLIENT_SECRET_BASIC.value
POST = TokenEndpointAuthMethod.CLIENT_SECRET_POST.value
PRIVATE_KEY_JWT = TokenEndpointAuthMethod.PRIVATE_KEY_JWT.value
# A workload's platform-issued JWT (DESIGN §9.2): no RFC 7591 method, allowed by the client's identities.
FEDERATED = "federated"
# RFC 8705 §2: ``client_id`` alone in the body; the client's registration says which certificate method.
CERTIFICATE = "certificate"
_ASSERTION_TYPES = (private_key_jwt.ASSERTION_TYPE, federation.SPIFFE_ASSERTION_TYPE)
# What a client whose method is unset may use: a secret, either way.
_UNSET_ALLOWS = frozenset({BASIC, POST})
_SECRET_LIKE = re.compile(re.escape(client_secrets.MARKER) + r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class PresentedCredentials:
    method: str
    # Candidate identifiers, preferred first: the form-decoded one, then the raw
    # one for callers that put an unencoded id with "+" or "%" in Basic.
    client_ids: tuple[str, ...]
    secret: str = ""
    assertion: private_key_jwt.Assertion | None = None


class ClientAuthenticationFailed(InvalidClientError):
    """``invalid_client`` for the caller, with the real ``reason`` for operators."""

    def __init__(
        self, reason: str, *, client_id: str | None, method: str | None, kind: FailureReason | None = None
    ) -> None:
        super().__init__()
        self.reason = reason
        self.client_id = client_id
        self.method = method
        self.kind = kind if kind is not None else metric_reason(reason)


def credentials_from_basic(authorization: str) -> PresentedCredentials:
    """``client_secret_basic``: RFC 6749 §2.3.1 and RFC 7617.

    The id and secret are form-encoded before base64 (§2.3.1); unencoded ones are
    accepted too.  The split is at the last colon: secrets never contain one, while
    an unencoded client id may.
    """
    scheme, _, encoded = authorization.strip().partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ClientAuthenticationFailed("malformed Basic credentials", client_id=None, method=BASIC) from None
    raw_id, colon, raw_secret = decoded.rpartition(":")
    if not colon or not raw_id:
        raise ClientAuthenticationFailed("malformed Basic credentials", client_id=None, method=BASIC)
    client_id = unquote_plus(raw_id)
    candidates = (client_id,) if client_id == raw_id else (client_id, raw_id)
    return PresentedCredentials(method=BASIC, client_ids=candidates, secret=unquote_plus(raw_secret))


def credentials_from_form(params: dict[str, list[str]]) -> PresentedCredentials | None:
    """``client_secret_post``: RFC 6749 §2.3.1, credentials in the request body."""
    client_id = single(params, "client_id")
    secret = single(params, "client_secret")
    if client_id is None and secret is None:
        return None
    return PresentedCredentials(method=POST, client_ids=(client_id or "",), secret=secret or "")


def credentials_from_assertion(params: dict[str, list[str]]) -> PresentedCredentials:
    """A JWT in ``client_assertion`` (RFC 7521 §4.2): ``private_key_jwt`` (RFC 7523 §2.2) when its
    ``iss`` is the client's own id, else a workload's token (federation, DESIGN §9.2).

    For ``private_key_jwt`` ``client_id`` may be sent, and must then be the assertion's
    ``sub``; a federated assertion needs it, since its ``sub`` names the workload.
    """
    assertion_type = single(params, "client_assertion_type")
    token = single(params, "client_assertion")
    if assertion_type is None or token is None:
        missing = "client_assertion" if token is None else "client_assertion_type"
        raise InvalidRequestError(description=f"The {missing} parameter is required with the other.")
    body_id = single(params, "client_id")
    if assertion_type not in _ASSERTION_TYPES:
        raise ClientAuthenticationFailed(
            "unsupported client_assertion_type", client_id=body_id, method=PRIVATE_KEY_JWT,
            kind=FailureReason.MALFORMED_CREDENTIALS,
        )
    try:
        assertion = private_key_jwt.parse(token)
    except private_key_jwt.AssertionRejected as rejected:
        raise ClientAuthenticationFailed(
            rejected.reason, client_id=body_id, method=PRIVATE_KEY_JWT, kind=FailureReason.MALFORMED_CREDENTIALS
        ) from None
    if assertion_type == federation.SPIFFE_ASSERTION_TYPE or (body_id is not None and assertion.issuer != body_id):
        if body_id is None:
            raise ClientAuthenticationFailed(
                "federated assertion without client_id", client_id=None, method=FEDERATED,
                kind=FailureReason.MALFORMED_CREDENTIALS,
            )
        return PresentedCredentials(method=FEDERATED, client_ids=(body_id,), assertion=assertion)
    subject = assertion.subject
    if body_id is not None and body_id != subject:
        raise ClientAuthenticationFailed(
            "client_id differs from the assertion's sub", client_id=body_id, method=PRIVATE_KEY_JWT,
            kind=FailureReason.INVALID_ASSERTION,
        )
    return PresentedCredentials(method=PRIVATE_KEY_JWT, client_ids=(subject or "",), assertion=assertion)


def presented_credentials(authorization: str | None, params: dict[str, list[str]]) -> PresentedCredentials:
    """The one set of credentials the request carries.

    RFC 6749 §2.3: a client MUST NOT use more than one method in a request.  A
    ``client_id`` in the body beside Basic is allowed when it names the same client.
    """
    is_basic = authorization is not None and authorization.strip()[:6].lower() == "basic "
    if "client_assertion" in params or "client_assertion_type" in params:
        if is_basic or "client_secret" in params:
            raise InvalidRequestError(description="Use one client authentication method, not two.")
        if authorization is not None:
            raise ClientAuthenticationFailed("unsupported Authorization scheme", client_id=None, method=None)
        return credentials_from_assertion(params)
    if authorization is not None and not is_basic:
        raise ClientAuthenticationFailed("unsupported Authorization scheme", client_id=None, method=None)
    if is_basic:
        assert authorization is not None
        credentials = credentials_from_basic(authorization)
        if "client_secret" in params:
            raise InvalidRequestError(description="Use one client authentication method, not two.")
        body_id = single(params, "client_id")
        if body_id is not None and body_id not in credentials.client_ids:
            raise InvalidRequestError(description="client_id in the body differs from the Basic credentials.")
        return credentials
    form = credentials_from_form(params)
    if form is None:
        raise ClientAuthenticationFailed("no client authentication", client_id=None, method=None)
    if "client_secret" not in params:
        return PresentedCredentials(method=CERTIFICATE, client_ids=form.client_ids)
    return form


_Fail = Callable[..., ClientAuthenticationFailed]


def authenticate_client(
    *,
    credentials: PresentedCredentials,
    address: IPAddress | None,
    now: datetime,
    path: str = "",
    certificate: mtls.ForwardedCertificate | None = None,
) -> ClientRecord:
    """Return the client the credentials prove, or raise ``ClientAuthenticationFailed``
    (or ``ServiceUnavailableError``, 503, when a check cannot be made now).

    ``path`` is the endpoint called, which a client assertion may name as its audience;
    ``certificate`` the TLS client certificate a trusted proxy forwarded.
    """
    first_id = credentials.client_ids[0]

    def fail(reason: str, kind: FailureReason | None = None) -> ClientAuthenticationFailed:
        return ClientAuthenticationFailed(reason, client_id=first_id, method=credentials.method, kind=kind)

    if credentials.method == FEDERATED:
        assert credentials.assertion is not None
        client = _authenticate_workload(credentials.assertion, first_id, fail=fail)
    elif credentials.assertion is not None:
        client = _authenticate_assertion(credentials.assertion, first_id, path=path, fail=fail)
    elif credentials.method == CERTIFICATE:
        client = _authenticate_certificate(first_id, certificate, now=now, fail=fail)
    else:
        client = _authenticate_secret(credentials, now=now, fail=fail)
    if not client.enabled:
        raise fail("client disabled")
    allowed = {client.token_endpoint_auth_method} if client.token_endpoint_auth_method else _UNSET_ALLOWS
    # A federated identity is itself the operator's permission; no method restricts it.  A
    # certificate was checked by the client's own method.
    if credentials.method not in (FEDERATED, CERTIFICATE) and credentials.method not in allowed:
        raise fail(f"auth method {credentials.method} not allowed")
    if not address_allowed(address, client.allowed_ips):
        raise fail(f"address {address} not allowed")
    return client


def _authenticate_secret(credentials: PresentedCredentials, *, now: datetime, fail: _Fail) -> ClientRecord:
    """``client_secret_basic`` and ``client_secret_post``.

    Unknown clients, wrong secrets and mistyped secrets cost the same: the same
    lookup and one HMAC comparison each.  In steady state the lookup is one query
    (``clients.registry``); the secret's last use is recorded after the response.
    """
    if not client_secrets.is_well_formed(credentials.secret):
        # A mistyped or foreign secret: refused without touching the database.
        raise fail("malformed secret")
    # An identifier no client can have (control characters, NUL, too long) is
    # unknown without asking the database, which may reject such a value outright.
    client_ids = [cid for cid in credentials.client_ids if CLIENT_ID_PATTERN.fullmatch(cid)]
    if not client_ids:
        client_secrets.match_secret(credentials.secret, [])
        raise fail("unknown client")
    # Preferred identifier first when both candidates exist.
    candidates = registry.candidates(client_ids, client_secrets.secret_prefix(credentials.secret))
    secret = client_secrets.match_secret(credentials.secret, [c.secret for c in candidates])
    if secret is None:
        known = Client.objects.filter(client_id__in=client_ids).exists()
        raise fail("wrong secret" if known else "unknown client")
    client = next(c.client for c in candidates if c.secret is secret)
    if client.enabled and not secret.is_live(now):
        raise fail("secret revoked" if secret.revoked else "secret expired")
    registry.note_use(secret, now)
    return client


def _authenticate_assertion(
    assertion: private_key_jwt.Assertion, client_id: str, *, path: str, fail: _Fail
) -> ClientRecord:
    """``private_key_jwt`` (``tokens.private_key_jwt``): the client named by ``sub``."""
    client = registry.client(client_id) if CLIENT_ID_PATTERN.fullmatch(client_id) else None
    if client is None:
        raise fail("unknown client")
    if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
        raise fail(f"auth method {PRIVATE_KEY_JWT} not allowed")
    try:
        private_key_jwt.verify(assertion, client=client, endpoint=paths.endpoint_of(path))
    except private_key_jwt.AssertionRejected as rejected:
        kind = FailureReason.REPLAYED_ASSERTION if rejected.replayed else FailureReason.INVALID_ASSERTION
        raise fail(f"assertion: {rejected.reason}", kind) from None
    except private_key_jwt.KeysUnavailable:
        log.warning("client authentication impossible now: client_id=%r keys unavailable", client_id)
        raise ServiceUnavailableError(description="The client's keys cannot be fetched now.") from None
    except private_key_jwt.ReplayCheckUnavailable as error:
        log.warning("client authentication impossible now: replay store unavailable (%s)", error)
        raise ServiceUnavailableError() from None
    return client


def _authenticate_certificate(
    client_id: str, certificate: mtls.ForwardedCertificate | None, *, now: datetime, fail: _Fail
) -> ClientRecord:
    """``tls_client_auth`` and ``self_signed_tls_client_auth`` (``tokens.mtls``): the client named
    by ``client_id``, proven by the certificate its TLS connection presented."""
    client = registry.client(client_id) if CLIENT_ID_PATTERN.fullmatch(client_id) else None
    if client is None:
        raise fail("unknown client")
    if client.token_endpoint_auth_method not in mtls.METHODS:
        # A secret client that sent none.
        raise fail("no client secret", FailureReason.NO_CREDENTIALS)
    try:
        mtls.authenticate(client, mtls.read(certificate) if certificate is not None else None, now=now)
    except mtls.CertificateRejected as rejected:
        kind = FailureReason.NO_CREDENTIALS if certificate is None else FailureReason.INVALID_CERTIFICATE
        raise fail(f"{client.token_endpoint_auth_method}: {rejected.reason}", kind) from None
    except private_key_jwt.KeysUnavailable:
        log.warning("client authentication impossible now: client_id=%r keys unavailable", client_id)
        raise ServiceUnavailableError(description="The client's certificates cannot be fetched now.") from None
    return client


def _authenticate_workload(assertion: private_key_jwt.Assertion, client_id: str, *, fail: _Fail) -> ClientRecord:
    """Federation (``tokens.federation``): the client named by ``client_id``, proven by a
    workload token one of its identities matches.  The success is logged with the issuer
    and the workload's ``sub``, so the trail says which workload got the token."""
    client = registry.client(client_id) if CLIENT_ID_PATTERN.fullmatch(client_id) else None
    if client is None:
        raise fail("unknown client")
    try:
        workload = federation.authenticate(assertion, client=client)
    except private_key_jwt.AssertionRejected as rejected:
        raise fail(f"workload token: {rejected.reason}", FailureReason.INVALID_ASSERTION) from None
    except private_key_jwt.KeysUnavailable as error:
        log.warning("client authentication impossible now: client_id=%r trusted issuer %s has no keys",
                    client_id, error)
        raise ServiceUnavailableError(description="The workload's issuer keys cannot be fetched now.") from None
    log.info(
        "federated client authentication: client_id=%r trusted_issuer=%s subject=%r",
        client_id, workload.trusted_issuer, workload.subject[:200],
        extra={"client_id": client_id, "trusted_issuer": workload.trusted_issuer, "subject": workload.subject[:200]},
    )
    return client


def loggable_client_id(client_id: str | None) -> str | None:
    """A caller-supplied client id made safe to log: anything shaped like one of our
    secrets (a secret pasted into the id field) is cut to its prefix, and the value
    is truncated."""
    if client_id is None:
        return None
    return _SECRET_LIKE.sub(lambda m: m.group(0)[: client_secrets.PREFIX_LENGTH] + "…", client_id)[:100]


# The reasons above as the fixed set the metrics count: the text itself may name an address.
_METRIC_REASONS = {
    "no client authentication": FailureReason.NO_CREDENTIALS,
    "malformed Basic credentials": FailureReason.MALFORMED_CREDENTIALS,
    "unsupported Authorization scheme": FailureReason.MALFORMED_CREDENTIALS,
    "malformed secret": FailureReason.MALFORMED_CREDENTIALS,
    "unknown client": FailureReason.UNKNOWN_CLIENT,
    "wrong secret": FailureReason.WRONG_SECRET,
    "client disabled": FailureReason.DISABLED_CLIENT,
    "secret revoked": FailureReason.EXPIRED_OR_REVOKED_SECRET,
    "secret expired": FailureReason.EXPIRED_OR_REVOKED_SECRET,
}


def metric_reason(reason: str) -> FailureReason:
    """The ``FailureReason`` of a ``ClientAuthenticationFailed.reason``."""
    if reason.startswith("auth method "):
        return FailureReason.METHOD_NOT_ALLOWED
    if reason.startswith("address "):
        return FailureReason.ADDRESS_NOT_ALLOWED
    return _METRIC_REASONS.get(reason, FailureReason.OTHER)


def log_failure(error: ClientAuthenticationFailed, address: IPAddress | None) -> None:
    record_client_authentication_failure(error.kind)
    if error.client_id:
        usage.authentication_failed(error.client_id)
    client_id = loggable_client_id(error.client_id)
    log.warning(
        "client authentication failed: reason=%r client_id=%r method=%s address=%s",
        error.reason, client_id, error.method, address,
        extra={"reason": error.reason, "client_id": client_id, "method": error.method,
               "address": str(address)},
    )


def _check_not_locked_out(*, client_id: str | None, address: IPAddress | None) -> None:
    """``ratelimit.check_not_locked_out``, counting a refusal as a ``locked_out`` failure."""
    try:
        ratelimit.check_not_locked_out(client_id=client_id, address=address)
    except TooManyAttemptsError:
        record_client_authentication_failure(FailureReason.LOCKED_OUT)
        raise


def authenticate_form_request(form: FormRequest, *, now: datetime) -> ClientRecord:
    """Authenticate the client of a token, introspection or revocation request.

    Locked-out callers are refused first (429, no database work); every failure is
    counted and logged with its real reason.  Raises ``ClientAuthenticationFailed``,
    ``InvalidRequestError`` or ``TooManyAttemptsError``.
    """
    client_id = None
    try:
        credentials = presented_credentials(form.authorization, form.params)
        client_id = credentials.client_ids[0]
        _check_not_locked_out(client_id=client_id, address=form.address)
        return authenticate_client(
            credentials=credentials, address=form.address, now=now, path=form.path, certificate=form.certificate
        )
    except ClientAuthenticationFailed as failure:
        _check_not_locked_out(client_id=None, address=form.address)
        ratelimit.record_failure(client_id=client_id, address=form.address)
        log_failure(failure, form.address)
        raise
