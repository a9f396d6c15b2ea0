"""One WSGI application, two Django handlers: the OAuth endpoints skip the middleware
only browsers need.

Token, introspection and revocation requests carry their own client credentials and
never touch sessions, users, messages, CSRF tokens, static files or the admin's
audit actor; running that middleware anyway cost about a third of a token request
(docs/performance.md).  Those paths get a handler with the middleware that still
matters for them: ``SecurityMiddleware`` (nosniff, referrer and HSTS headers) and
``CommonMiddleware`` (the ``ALLOWED_HOSTS`` check and ``Content-Length``).  Every
other path runs the full ``MIDDLEWARE`` list.

Which paths take the lean chain is the URLconf's to say, as its ``handler404`` says
which view renders a 404: it names them ``lean_urlpatterns`` (the OAuth routes, whose
paths are written once, in ``tokens/urls.py``), and a request's path is matched here
against those routes with Django's own route matching.  So this module imports no
app, and the lean chain serves exactly the paths the OAuth views are routed at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import URLPattern, get_resolver

OAUTH_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class OAuthHandler(WSGIHandler):
    """Django's WSGI handler with ``OAUTH_MIDDLEWARE`` instead of ``MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; swap it while this
        # handler is built (once, at startup, before any request is served).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [name for name in full if name in OAUTH_MIDDLEWARE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def lean_urlpatterns() -> Sequence[URLPattern]:
    """The routes the root URLconf names ``lean_urlpatterns`` (none if it names none)."""
    return tuple(getattr(get_resolver().urlconf_module, "lean_urlpatterns", ()))


def dispatching_application(full: WSGIApp) -> WSGIApp:
    """``full`` for every path except the lean routes, which go to an ``OAuthHandler``."""
    lean = OAuthHandler()
    patterns = lean_urlpatterns()

    def is_lean(path: str) -> bool:
        # As Django's root resolver does: strip the leading "/", then match each route.
        return path[:1] == "/" and any(pattern.pattern.match(path[1:]) for pattern in patterns)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if is_lean(environ.get("PATH_INFO", "")):
            return lean(environ, start_response)
        return full(environ, start_response)

    return application
