"""What every OAuth endpoint shares: POST only, JSON always, RFC 6749 §5.2 errors.

A plain Django view, not DRF's ``APIView``: these endpoints authenticate the client
from the request itself and parse their own bodies (``tokens.form``), so DRF's
request wrapping, negotiation and authentication would only add cost.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from tokens.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    OAuth2Error,
    TemporarilyUnavailableError,
    error_response,
)

log = logging.getLogger("authserver.tokens")


@method_decorator(csrf_exempt, name="dispatch")
class OAuthEndpoint(View):
    """Base for OAuth endpoints: subclasses define ``post``; the client authenticates
    itself in the request, so there is no session and no CSRF token."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return error_response(MethodNotAllowedError())
        try:
            return self.post(request)
        except OAuth2Error as error:
            return error_response(error)
        except DataError:
            # A value the database refuses (e.g. NUL) is a malformed request, not our failure.
            return error_response(InvalidRequestError(description="The request contains an invalid value."))
        except (OperationalError, InterfaceError) as error:
            log.error("database unavailable: %s", type(error).__name__)
            return error_response(TemporarilyUnavailableError(status_code=503))

    def post(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError
