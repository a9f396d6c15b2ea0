"""Strict reading of ``application/x-www-form-urlencoded`` request bodies (RFC 6749 §3.2).

Django's ``request.POST`` keeps only the last of repeated parameters and silently
accepts any content type; the token endpoint must see both, so it reads the body here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest

from tokens.addresses import IPAddress, client_address
from tokens.errors import InvalidRequestError, RequestTooLargeError
from tokens.mtls import ForwardedCertificate, forwarded_certificate

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64
# RFC 8707 §2: `resource` may be repeated; every other parameter only once (RFC 6749 §3.2).
REPEATABLE = frozenset({"resource"})


def read_form(request: HttpRequest) -> dict[str, list[str]]:
    """Return the body's parameters, each with its values in order.

    Parameters sent without a value are treated as omitted (RFC 6749 §3.1).
    Raises ``InvalidRequestError`` (or 413) for anything but a well-formed form body.
    """
    if (request.content_type or "").lower() != FORM_CONTENT_TYPE:
        raise InvalidRequestError(
            description=f"The request body must be {FORM_CONTENT_TYPE}."
        )
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise InvalidRequestError(description="The request body must be UTF-8.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidRequestError(description="Invalid Content-Length.") from None
    if length > settings.TOKEN_REQUEST_MAX_BYTES:
        raise RequestTooLargeError()
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=False, encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError(description="The request body is not a valid UTF-8 form.") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    repeated = sorted(name for name, values in params.items() if len(values) > 1 and name not in REPEATABLE)
    if repeated:
        raise InvalidRequestError(description=f"Repeated parameter: {', '.join(repeated)}.")
    return params


def single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


@dataclass(frozen=True)
class FormRequest:
    """A POST to an OAuth endpoint as read off the wire, before any check of its meaning."""

    params: dict[str, list[str]]
    authorization: str | None
    address: IPAddress | None
    path: str = ""  # the path called, e.g. /oauth/token/ (client assertions may name it in aud)
    dpop: str | None = None  # the DPoP header (RFC 9449 §4.1); repeated ones arrive comma-joined
    # The TLS client certificate a trusted proxy forwarded (RFC 8705, RFC 9440), not yet read.
    certificate: ForwardedCertificate | None = None


def read_form_request(request: HttpRequest) -> FormRequest:
    """Parse the HTTP request; credentials in the query string are never read."""
    return FormRequest(
        params=read_form(request),
        authorization=request.META.get("HTTP_AUTHORIZATION"),
        address=client_address(request),
        path=request.path_info,
        dpop=request.META.get("HTTP_DPOP"),
        certificate=forwarded_certificate(request),
    )
