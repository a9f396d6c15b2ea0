"""Management API routes, each with and without a trailing slash, never a redirect.

A client ID may hold any printable ASCII but space (RFC 6749 Appendix A, VSCHAR), so its segment matches
anything, ``/`` included (Django decodes ``%2F`` before routing, so an encoded slash
cannot be told from a literal one).  The fixed suffixes are tried first: an ID that
itself ends in ``/secrets``, ``/secrets/<x>``, ``/api_keys``, ``/api_keys/<x>``, ``/usage`` or
``/reset_secret`` is reachable only through the admin and the CLI.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from clients import api, apidocs

CLIENT = r"^client/(?P<client_id>.+?)"

urlpatterns: list[URLPattern] = [
    re_path(r"^client/?$", api.ClientListView.as_view(), name="client-list"),
    re_path(rf"{CLIENT}/reset_secret/?$", api.ClientResetSecretView.as_view(), name="client-reset-secret"),
    re_path(rf"{CLIENT}/secrets/?$", api.ClientSecretListView.as_view(), name="client-secrets"),
    re_path(rf"{CLIENT}/usage/?$", api.ClientUsageView.as_view(), name="client-usage"),
    re_path(rf"{CLIENT}/secrets/(?P<prefix>[^/]+)/?$", api.ClientSecretDetailView.as_view(), name="client-secret"),
    re_path(rf"{CLIENT}/api_keys/?$", api.ClientApiKeyListView.as_view(), name="client-api-keys"),
    re_path(rf"{CLIENT}/api_keys/(?P<prefix>[^/]+)/?$", api.ClientApiKeyDetailView.as_view(), name="client-api-key"),
    re_path(rf"{CLIENT}/?$", api.ClientDetailView.as_view(), name="client-detail"),
    re_path(r"^tenant/?$", api.TenantListView.as_view(), name="tenant-list"),
    re_path(r"^tenant/(?P<slug>[-a-zA-Z0-9_]+)/?$", api.TenantDetailView.as_view(), name="tenant-detail"),
    re_path(r"^role/?$", api.RoleListView.as_view(), name="role-list"),
    re_path(r"^role/(?P<role_id>[0-9]{1,18})/?$", api.RoleDetailView.as_view(), name="role-detail"),
    re_path(r"^trusted_issuer/?$", api.TrustedIssuerListView.as_view(), name="trusted-issuer-list"),
    re_path(
        r"^trusted_issuer/(?P<name>[-a-zA-Z0-9_]+)/?$", api.TrustedIssuerDetailView.as_view(),
        name="trusted-issuer-detail",
    ),
    re_path(r"^api/schema/?$", apidocs.schema_view, name="api-schema"),
    re_path(r"^api/docs/?$", apidocs.docs_view, name="api-docs"),
]
