"""Admin registrations for the registry.

django-oauth-toolkit's pages for things this server does not use (grants, refresh
tokens, ID tokens, its own access tokens) are removed.
"""

from __future__ import annotations

from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from clients.models import Client, ClientSecret, Role, Tenant

for model in (
    get_application_model(), get_access_token_model(), get_grant_model(),
    get_id_token_model(), get_refresh_token_model(),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ClientSecretInline(admin.TabularInline):
    model = ClientSecret
    fields = ("prefix", "created", "expires", "revoked", "last_used")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "enabled", "token_endpoint_auth_method", "created")
    list_filter = ("enabled", "tenants")
    search_fields = ("client_id", "name")
    fields = (
        "client_id", "name", "enabled", "grant_types", "allowed_scopes", "default_scopes",
        "token_endpoint_auth_method", "access_token_ttl", "audiences", "allowed_ips",
        "tenants", "roles", "user",
    )
    filter_horizontal = ("tenants", "roles")
    inlines = (ClientSecretInline,)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created")
    search_fields = ("slug", "name")


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "created")
    list_filter = ("tenant",)
    search_fields = ("name",)
