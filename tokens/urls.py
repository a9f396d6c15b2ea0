"""The OAuth endpoints' routes: token (RFC 6749 §3.2), introspection (RFC 7662 §2) and
revocation (RFC 7009 §2).

Every token path routes to one view.  Each path is accepted with or without a
trailing slash, never redirected: a client may follow a redirect of its POST with a GET
(RFC 9110 §15.4.2, §15.4.3), which loses the body and with it the request.

The paths are spelled once, in ``tokens.paths``; the project URLconf routes them and names them
its ``lean_urlpatterns``, from which ``authserver.handlers`` builds the matcher that
sends them to the lean middleware chain.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from tokens import paths
from tokens.endpoints.introspection import IntrospectionView
from tokens.endpoints.revocation import RevocationView
from tokens.endpoints.token import TokenView

urlpatterns: list[URLPattern] = [
    re_path(rf"^{paths.TOKEN}$", TokenView.as_view(), name="token"),
    re_path(rf"^{paths.INTROSPECT}$", IntrospectionView.as_view(), name="introspect"),
    re_path(rf"^{paths.REVOKE}$", RevocationView.as_view(), name="revoke"),
]
