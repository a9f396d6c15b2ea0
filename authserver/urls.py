from django.contrib import admin
from django.urls import include, path, re_path

from authserver.health import healthz, readyz
from tokens import urls as oauth_urls
from tokens.endpoints.jwks import jwks
from tokens.endpoints.metadata import metadata
from tokens.endpoints.metrics import metrics_view

handler400 = "authserver.errors.bad_request"
handler403 = "authserver.errors.permission_denied"
handler404 = "authserver.errors.page_not_found"
handler500 = "authserver.errors.server_error"

# Served on the lean middleware chain (authserver.handlers): the OAuth endpoints.
lean_urlpatterns = oauth_urls.urlpatterns

urlpatterns = [
    *lean_urlpatterns,
    re_path(r"^\.well-known/oauth-authorization-server/?$", metadata, name="metadata"),
    re_path(r"^\.well-known/openid-configuration/?$", metadata, name="openid-configuration"),
    re_path(r"^\.well-known/jwks\.json$", jwks, name="jwks"),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^readyz/?$", readyz, name="readyz"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("clients.urls")),
]
