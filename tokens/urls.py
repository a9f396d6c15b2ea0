"""The OAuth endpoints' routes: token (RFC 6749 §3.2), introspection (RFC 7662 §2) and
revocation (RFC 7009 §2).

Every token path routes to one view.  Each path is accepted with or without a
trailing slash, never redirected: a client may follow a redirect of its POST with a GET
(RFC 9110 §15.4.2, §15.4.3), which loses the body and with it the request.

These are the paths' only spelling: the project URLconf routes them and names them
its ``lean_urlpatterns``, from which ``authserver.handlers`` builds the matcher that
sends them to the lean middleware chain.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from tokens.endpoints.introspection import IntrospectionView
from tokens.endpoints.revocation import RevocationView
from tokens.endpoints.token import TokenView

urlpatterns: list[URLPattern] = [
    re_path(r"^(?:oauth|oauth2|openidconnect)/token/?$", TokenView.as_view(), name="token"),
    re_path(r"^(?:oauth|oauth2)/introspect/?$", IntrospectionView.as_view(), name="introspect"),
    re_path(r"^(?:oauth|oauth2)/revoke/?$", RevocationView.as_view(), name="revoke"),
]
