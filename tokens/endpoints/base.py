"""What every OAuth endpoint shares: JSON always, no DRF authentication, RFC 6749 §5.2 errors."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from tokens.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    OAuth2Error,
    TemporarilyUnavailableError,
    error_response,
)

log = logging.getLogger("authserver.tokens")


class AlwaysJSON(BaseContentNegotiation):
    """OAuth responses are JSON whatever the client's Accept header says (RFC 6749 §5.1)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class OAuthEndpoint(APIView):
    """Base for OAuth endpoints: POST only, the client authenticates itself in the request."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = ()
    content_negotiation_class = AlwaysJSON

    def http_method_not_allowed(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        return error_response(MethodNotAllowedError())

    options = http_method_not_allowed  # type: ignore[assignment]

    @property
    def allowed_methods(self) -> list[str]:
        return ["POST"]

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        if isinstance(exc, OAuth2Error):
            return error_response(exc)
        if isinstance(exc, DataError):
            # A value the database refuses (e.g. NUL) is a malformed request, not our failure.
            return error_response(InvalidRequestError(description="The request contains an invalid value."))
        if isinstance(exc, (OperationalError, InterfaceError)):
            log.error("database unavailable: %s", type(exc).__name__)
            return error_response(TemporarilyUnavailableError(status_code=503))
        return super().handle_exception(exc)
