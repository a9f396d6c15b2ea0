from django.contrib import admin
from django.urls import include, path, re_path

from authserver.health import healthz, readyz
from tokens.endpoints.introspection import IntrospectionView
from tokens.endpoints.jwks import jwks
from tokens.endpoints.metadata import metadata
from tokens.endpoints.revocation import RevocationView
from tokens.endpoints.token import TokenView

handler400 = "authserver.errors.bad_request"
handler403 = "authserver.errors.permission_denied"
handler404 = "authserver.errors.page_not_found"
handler500 = "authserver.errors.server_error"

token_view = TokenView.as_view()

urlpatterns = [
    # One view for every token path, with or without a trailing slash: never a redirect.
    re_path(r"^(?:oauth|oauth2|openidconnect)/token/?$", token_view, name="token"),
    re_path(r"^(?:oauth|oauth2)/introspect/?$", IntrospectionView.as_view(), name="introspect"),
    re_path(r"^(?:oauth|oauth2)/revoke/?$", RevocationView.as_view(), name="revoke"),
    re_path(r"^\.well-known/oauth-authorization-server/?$", metadata, name="metadata"),
    re_path(r"^\.well-known/openid-configuration/?$", metadata, name="openid-configuration"),
    re_path(r"^\.well-known/jwks\.json$", jwks, name="jwks"),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^readyz/?$", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("clients.urls")),
]
