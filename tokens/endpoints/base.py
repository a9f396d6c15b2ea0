"""What every OAuth endpoint shares: POST only, JSON always, RFC 6749 §5.2 errors.

A lean DRF ``APIView``.  The client authenticates itself in the request (RFC 6749
§2.3), so there are no authentication, permission or throttle classes; with no
authentication class there is no session, and so no CSRF check, whatever cookies
come along.  The body is read from the underlying Django request by ``tokens.form``,
which holds the exact content-type and charset rules (RFC 6749 §3.2), so there are no
parsers.  Responses are JSON whatever ``Accept`` says (RFC 6749 §5.1): one renderer,
picked by a negotiation that compares nothing.  Every error is rendered by
``handle_exception``, as RFC 6749 §5.2 says.

Each request is counted once in the metrics (tokens.metrics), under its route's name, with
``success`` or the ``error`` code it was answered with, and timed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from tokens import metrics
from tokens.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    OAuth2Error,
    TemporarilyUnavailableError,
    error_response,
)

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView

log = logging.getLogger("authserver.tokens")


class AlwaysJSON(BaseContentNegotiation):
    """RFC 6749 §5.1: OAuth responses are ``application/json``, whatever was asked for."""

    def select_parser(self, request: Request, parsers: Iterable[Any]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class OAuthEndpoint(APIView):
    """Base for OAuth endpoints: subclasses define ``post``, and add to ``secret_parameters``
    any other form parameter that holds a secret."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = ()
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = AlwaysJSON
    versioning_class = None
    # No OPTIONS metadata: DRF's ``options`` then answers 405 like any method but POST.
    metadata_class = None
    # Not part of the management API's OpenAPI document: RFC 8414 metadata describes these.
    schema = None

    # Form parameters holding credentials (RFC 6749 §2.3.1, RFC 7521 §4.2): Django's
    # error reports show them starred (``sensitive_post_parameters``).
    secret_parameters: tuple[str, ...] = ("client_secret", "client_assertion")

    # The metrics' ``result`` of the request being served: ``handle_exception`` sets the error.
    result = metrics.SUCCESS

    @classmethod
    def as_view(cls, **initkwargs: Any) -> AsView[GenericView]:
        # Decorated once, here: ``method_decorator`` on ``dispatch`` would build the
        # decorated method again on every request.  The decorator gets Django's request.
        return sensitive_post_parameters(*cls.secret_parameters)(super().as_view(**initkwargs))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        started = time.perf_counter()
        try:
            return super().dispatch(request, *args, **kwargs)
        except Exception:
            # Not answered here: Django's handler500 answers it with server_error.
            self.result = "server_error"
            raise
        finally:
            endpoint = request.resolver_match.url_name if request.resolver_match else None
            metrics.record_request(endpoint or "", self.result, time.perf_counter() - started)
            self.forget_parser_context()

    def forget_parser_context(self) -> None:
        """Drop what DRF's ``Request`` keeps in ``parser_context``: itself and this view.

        That is a reference cycle per request (request -> context -> request, and view ->
        request -> context -> view), which holds the request, the view, the response and
        everything they reference until the garbage collector finds them: some 27 objects a
        token, and a collection every 30 or so tokens (docs/performance.md, issue 17).  These
        endpoints have no parsers, the context's only reader, and it is done with once the
        response is made; without it, reference counting frees them all at once.
        """
        drf_request = getattr(self, "request", None)
        if isinstance(drf_request, Request):
            drf_request.parser_context = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # DRF's own would also version, authenticate, check permissions and throttle:
        # with none of those classes, walking them finds nothing, at a cost per request.
        self.format_kwarg = None
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)

    @property
    def default_response_headers(self) -> dict[str, str]:
        # Not DRF's ``Allow`` on every response: only a 405 says what is allowed.
        return {}

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        raise MethodNotAllowedError()

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        error = self.oauth_error(exc)
        if error is None:
            # DRF answers its own exceptions (none is raised here) and re-raises the rest.
            self.result = metrics.OTHER
            return super().handle_exception(exc)
        self.result = error.error
        return error_response(error)

    def oauth_error(self, exc: Exception) -> OAuth2Error | None:
        """The RFC 6749 §5.2 error ``exc`` is answered with; None for a failure of ours."""
        if isinstance(exc, OAuth2Error):
            return exc
        if isinstance(exc, DataError):
            # A value the database refuses (e.g. NUL) is a malformed request, not our failure.
            return InvalidRequestError(description="The request contains an invalid value.")
        if isinstance(exc, (OperationalError, InterfaceError)):
            log.error("database unavailable: %s", type(exc).__name__)
            return TemporarilyUnavailableError(status_code=503)
        return None
