"""Client authentication at the token endpoint (RFC 6749 §2.3).

One small function per method reads the credentials; ``authenticate_client`` checks
them.  Callers only ever learn "invalid_client"; the real reason goes to the log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from clients import registry, usage
from clients import secrets as client_secrets
from clients.models import CLIENT_ID_PATTERN, Client, TokenEndpointAuthMethod
from clients.registry import ClientRecord
from tokens import ratelimit
from tokens.addresses import IPAddress, address_allowed
from tokens.errors import InvalidClientError, InvalidRequestError, TooManyAttemptsError
from tokens.form import FormRequest, single
from tokens.metrics import FailureReason, record_client_authentication_failure

log = logging.getLogger("authserver.client_auth")

BASIC = TokenEndpointAuthMethod.CLIENT_SECRET_BASIC.value
POST = TokenEndpointAuthMethod.CLIENT_SECRET_POST.value
_SECRET_LIKE = re.compile(re.escape(client_secrets.MARKER) + r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class PresentedCredentials:
    method: str
    # Candidate identifiers, preferred first: the form-decoded one, then the raw
    # one for callers that put an unencoded id with "+" or "%" in Basic.
    client_ids: tuple[str, ...]
    secret: str


class ClientAuthenticationFailed(InvalidClientError):
    """``invalid_client`` for the caller, with the real ``reason`` for operators."""

    def __init__(self, reason: str, *, client_id: str | None, method: str | None) -> None:
        super().__init__()
        self.reason = reason
        self.client_id = client_id
        self.method = method


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


def presented_credentials(authorization: str | None, params: dict[str, list[str]]) -> PresentedCredentials:
    """The one set of credentials the request carries.

    RFC 6749 §2.3: a client MUST NOT use more than one method in a request.  A
    ``client_id`` in the body beside Basic is allowed when it names the same client.
    """
    is_basic = authorization is not None and authorization.strip()[:6].lower() == "basic "
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
    return form


def authenticate_client(
    *, credentials: PresentedCredentials, address: IPAddress | None, now: datetime
) -> ClientRecord:
    """Return the client the credentials prove, or raise ``ClientAuthenticationFailed``.

    Unknown clients, wrong secrets and mistyped secrets cost the same: the same
    lookup and one HMAC comparison each.  In steady state the lookup is one query
    (``clients.registry``); the secret's last use is recorded after the response.
    """
    first_id = credentials.client_ids[0]

    def fail(reason: str) -> ClientAuthenticationFailed:
        return ClientAuthenticationFailed(reason, client_id=first_id, method=credentials.method)

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
    if not client.enabled:
        raise fail("client disabled")
    if not secret.is_live(now):
        raise fail("secret revoked" if secret.revoked else "secret expired")
    if client.token_endpoint_auth_method and client.token_endpoint_auth_method != credentials.method:
        raise fail(f"auth method {credentials.method} not allowed")
    if not address_allowed(address, client.allowed_ips):
        raise fail(f"address {address} not allowed")
    registry.note_use(secret, now)
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
    record_client_authentication_failure(metric_reason(error.reason))
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
        return authenticate_client(credentials=credentials, address=form.address, now=now)
    except ClientAuthenticationFailed as failure:
        _check_not_locked_out(client_id=None, address=form.address)
        ratelimit.record_failure(client_id=client_id, address=form.address)
        log_failure(failure, form.address)
        raise
