"""OAuth 2.0 protocol errors (RFC 6749 §5.2, RFC 8707 §2) and their one renderer.

oauthlib's error classes are reused; the ones it lacks are two-line subclasses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from oauthlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    TemporarilyUnavailableError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)

from authserver.responses import json_response

__all__ = [
    "InvalidClientError", "InvalidRequestError", "InvalidScopeError", "InvalidTargetError",
    "MethodNotAllowedError", "OAuth2Error", "ReadOnlyEndpointError", "RequestTooLargeError",
    "ServiceUnavailableError", "TemporarilyUnavailableError", "TooManyAttemptsError",
    "UnauthorizedClientError", "UnsupportedGrantTypeError",
    "error_response", "read_only",
]


# RFC 7235 §3.1: a 401 carries WWW-Authenticate; RFC 6749 §5.2: matching the scheme tried.
BASIC_CHALLENGE = 'Basic realm="authserver", charset="UTF-8"'


class InvalidTargetError(OAuth2Error):
    error = "invalid_target"
    description = "The requested resource is invalid, unknown or not allowed for this client."


class RequestTooLargeError(InvalidRequestError):
    status_code = 413
    description = "The request body is too large."


class MethodNotAllowedError(InvalidRequestError):
    status_code = 405
    description = "This endpoint accepts only POST."
    allow = "POST"


class ReadOnlyEndpointError(MethodNotAllowedError):
    description = "This endpoint accepts only GET and HEAD."
    allow = "GET, HEAD"


class ServiceUnavailableError(TemporarilyUnavailableError):
    """503: something this request needs (a client's keys, the replay store) cannot be had now."""

    status_code = 503


class TooManyAttemptsError(TemporarilyUnavailableError):
    """429: too many failed client authentications from here; ``Retry-After`` says when to retry."""

    status_code = 429
    description = "Too many failed client authentications; retry later."

    def __init__(self, *, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


_DEFAULT_DESCRIPTIONS = {
    "invalid_request": "The request is malformed.",
    "invalid_client": "Client authentication failed.",
    "unauthorized_client": "This client may not use this grant type.",
    "unsupported_grant_type": "The grant type is not supported; use client_credentials.",
    "invalid_scope": "The requested scope is invalid, unknown or not allowed for this client.",
    "server_error": "The server could not complete the request.",
    "temporarily_unavailable": "The server is temporarily unavailable; try again shortly.",
}


def read_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Serve GET and HEAD; answer other methods with a JSON 405 (no CSRF check: nothing changes)."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return error_response(ReadOnlyEndpointError())
        return view(request)

    return wrapper


# RFC 6749 §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E ).
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_DESCRIPTION_MAX = 300


def _description(error: OAuth2Error) -> str:
    """The description, with any character §5.2 forbids (a caller's quotes, control
    characters, non-ASCII echoed back) replaced by ``?`` and its length bounded."""
    text = error.description or _DEFAULT_DESCRIPTIONS.get(error.error, "")
    return _NOT_IN_DESCRIPTION.sub("?", text)[:_DESCRIPTION_MAX]


def error_response(error: OAuth2Error) -> HttpResponse:
    """Render ``error`` as RFC 6749 §5.2 JSON with no-store headers and the right challenge."""
    body = {"error": error.error, "error_description": _description(error)}
    headers: dict[str, str] = {}
    if error.status_code == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    if isinstance(error, MethodNotAllowedError):
        headers["Allow"] = error.allow
    nonce = getattr(error, "dpop_nonce", None)  # RFC 9449 §8: use_dpop_nonce names the nonce to use
    if nonce:
        headers["DPoP-Nonce"] = nonce
    if isinstance(error, TooManyAttemptsError):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, TemporarilyUnavailableError) or error.status_code == 503:
        headers["Retry-After"] = "5"
    return json_response(body, status=error.status_code, headers=headers)
