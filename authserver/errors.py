"""Django's own error pages as JSON everywhere but the admin (which keeps HTML)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from authserver.responses import json_response

_ERRORS = {
    400: ("invalid_request", "The request is malformed."),
    403: ("access_denied", "Forbidden."),
    404: ("not_found", "No such endpoint."),
    413: ("invalid_request", "The request body is too large."),
    500: ("server_error", "The server could not complete the request."),
}


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith("/admin/")


def _json(status: int) -> HttpResponse:
    error, description = _ERRORS[status]
    return json_response({"error": error, "error_description": description}, status=status)


def bad_request(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, (RequestDataTooBig, TooManyFieldsSent)):
        return _json(413)
    return _json(400)


def permission_denied(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    return defaults.permission_denied(request, exception) if _is_admin(request) else _json(403)


def page_not_found(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    return defaults.page_not_found(request, exception) if _is_admin(request) else _json(404)


def csrf_failure(request: HttpRequest, reason: str = "", **kwargs: Any) -> HttpResponse:
    if _is_admin(request):
        from django.views.csrf import csrf_failure as html_csrf_failure

        return html_csrf_failure(request, reason)
    return _json(403)


def server_error(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return defaults.server_error(request) if _is_admin(request) else _json(500)
