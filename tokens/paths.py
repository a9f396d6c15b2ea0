"""Where the OAuth endpoints live under ``ISSUER``: each endpoint's paths, spelled once.

``tokens.urls`` routes them; client assertions name them in ``aud`` (RFC 7523 §3,
OIDC Core §9), and DPoP proofs in ``htu``.  Each is accepted with or without a trailing
slash and under each of its aliases.
"""

from __future__ import annotations

import re

TOKEN = r"(?:oauth|oauth2|openidconnect)/token/?"
INTROSPECT = r"(?:oauth|oauth2)/introspect/?"
REVOKE = r"(?:oauth|oauth2)/revoke/?"
ENDPOINTS = (TOKEN, INTROSPECT, REVOKE)
_COMPILED = {pattern: re.compile(pattern) for pattern in ENDPOINTS}


def endpoint_of(path: str) -> str | None:
    """The endpoint pattern a request path (``/oauth/token/``) belongs to, or ``None``."""
    relative = path.removeprefix("/")
    return next((pattern for pattern, compiled in _COMPILED.items() if compiled.fullmatch(relative)), None)


def is_url_of(url: str, endpoint: str, *, issuer: str) -> bool:
    """Whether ``url`` is ``endpoint`` under ``issuer``, by any of its paths."""
    base = issuer + "/"
    return url.startswith(base) and _COMPILED[endpoint].fullmatch(url[len(base):]) is not None
