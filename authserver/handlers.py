"""One WSGI application, two Django handlers: the OAuth endpoints skip the middleware
only browsers need.

Token, introspection and revocation requests carry their own client credentials and
never touch sessions, users, messages, CSRF tokens, static files or the admin's
audit actor; running that middleware anyway cost about a third of a token request
(docs/performance.md).  Those paths get a handler with the middleware that still
matters for them: ``SecurityMiddleware`` (nosniff, referrer and HSTS headers) and
``CommonMiddleware`` (the ``ALLOWED_HOSTS`` check and ``Content-Length``).  Every
other path runs the full ``MIDDLEWARE`` list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# The paths tokens/urls route to the three OAuth endpoints (authserver/urls.py).
OAUTH_PATH = re.compile(r"/(?:oauth2?/(?:token|introspect|revoke)|openidconnect/token)/?")
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


def dispatching_application(full: WSGIApp) -> WSGIApp:
    """``full`` for every path except the OAuth endpoints, which go to an ``OAuthHandler``."""
    lean = OAuthHandler()

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if OAUTH_PATH.fullmatch(environ.get("PATH_INFO", "")):
            return lean(environ, start_response)
        return full(environ, start_response)

    return application
