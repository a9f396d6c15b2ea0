"""The operator UI for the client registry.

Every write to a client or its secrets goes through ``clients.services``.  A newly
made secret is shown exactly once, on a page rendered straight into the POST
response with ``Cache-Control: no-store``: never in ``django.contrib.messages``
(its cookie or session would keep it), a URL or a log line.

django-oauth-toolkit's pages for things this server does not use (grants, refresh
tokens, ID tokens, its own access tokens and applications) are removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, ManyToManyField, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import Form, ModelMultipleChoiceField
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_variables
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from clients import certificates, jwks, metadata, services, usage_report
from clients.forms import (
    ApiKeyCreateForm,
    ApiKeyRevokeForm,
    ClientForm,
    ConfirmForm,
    RoleForm,
    SecretAddForm,
    SecretRevokeForm,
    TenantForm,
    TrustedIssuerForm,
    setting_formfield,
)
from clients.models import ApiKey, AuditEvent, Client, ClientSecret, ClientUsage, Role, Tenant, TrustedIssuer

for model in (
    get_application_model(), get_access_token_model(), get_grant_model(),
    get_id_token_model(), get_refresh_token_model(),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)

# Carries the secret made by ``client_create`` from ``save_model`` to ``response_add``.
_ISSUED = "_admin_issued_secret"


def _shown(moment: datetime | None, empty: str) -> str:
    """A time as the admin shows model fields (read-only callables get no formatting)."""
    return str(formats.localize(timezone.localtime(moment))) if moment else empty


class ClientSecretInline(admin.TabularInline):
    """A client's secrets, read-only: only their prefixes, never the secrets or hashes."""

    model = ClientSecret
    fields = ("prefix", "status", "created", "expires_at", "last_used_at", "revoked_at", "revoke_link")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "secret"
    verbose_name_plural = "secrets (known by their first characters; the secrets themselves are never stored)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status")
    def status(self, secret: ClientSecret) -> str:
        if secret.revoked is not None:
            return "revoked"
        return "live" if secret.is_live(timezone.now()) else "expired"

    @admin.display(description="expires")
    def expires_at(self, secret: ClientSecret) -> str:
        return _shown(secret.expires, "never")

    @admin.display(description="last used")
    def last_used_at(self, secret: ClientSecret) -> str:
        return _shown(secret.last_used, "never")

    @admin.display(description="revoked")
    def revoked_at(self, secret: ClientSecret) -> str:
        return _shown(secret.revoked, "-")

    @admin.display(description="")
    def revoke_link(self, secret: ClientSecret) -> str:
        if not secret.is_live(timezone.now()):
            return ""
        url = reverse("admin:clients_client_revoke_secret", args=[quote(secret.client_id)])
        return format_html('<a href="{}?{}">Revoke…</a>', url, urlencode({"prefix": secret.prefix}))


class ApiKeyInline(admin.TabularInline):
    """A client's API keys, read-only: name, prefix, scope and times; never the key or its hash.
    Revoked keys stay listed until they would have expired."""

    model = ApiKey
    fields = ("name", "prefix", "scope", "created", "expires_at", "last_used_at", "revoked_at", "revoke_link")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "API key"
    verbose_name_plural = "API keys (known by their first characters; the keys themselves are never stored)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).filter(expires__gt=timezone.now())

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="scope")
    def scope(self, key: ApiKey) -> str:
        return " ".join(key.scopes)

    @admin.display(description="expires")
    def expires_at(self, key: ApiKey) -> str:
        return _shown(key.expires, "")

    @admin.display(description="last used")
    def last_used_at(self, key: ApiKey) -> str:
        return _shown(key.last_used, "never")

    @admin.display(description="revoked")
    def revoked_at(self, key: ApiKey) -> str:
        return _shown(key.revoked, "-")

    @admin.display(description="")
    def revoke_link(self, key: ApiKey) -> str:
        if not key.is_live(timezone.now()):
            return ""
        url = reverse("admin:clients_client_revoke_api_key", args=[quote(key.client_id)])
        return format_html('<a href="{}?{}">Revoke…</a>', url, urlencode({"prefix": key.prefix}))


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    list_display = (
        "client_id", "name", "enabled", "tenant_list", "scope_list", "live_secrets", "last_used",
    )
    list_display_links = ("client_id", "name")
    list_filter = ("enabled", "tenants", "token_endpoint_auth_method")
    search_fields = ("client_id", "name")
    search_help_text = "Search by client ID or name."
    filter_horizontal = ("tenants", "roles")
    autocomplete_fields = ("user",)
    inlines = (ClientSecretInline, ApiKeyInline)
    actions = ("enable_clients", "disable_clients")
    view_on_site = False

    # -- pages ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        # Correlated subqueries: one query for any number of clients, and the
        # tenant filter's join cannot multiply the counts.
        def per_client(secrets: QuerySet[ClientSecret]) -> QuerySet[ClientSecret, Any]:
            return secrets.filter(client=OuterRef("pk")).order_by().values("client")

        live = per_client(ClientSecret.objects.live(timezone.now())).annotate(n=Count("pk")).values("n")
        last_used = per_client(ClientSecret.objects.all()).annotate(last=Max("last_used")).values("last")
        return (
            super().get_queryset(request)
            .annotate(live_secret_count=Coalesce(Subquery(live), 0), secrets_last_used=Subquery(last_used))
            .prefetch_related("tenants")
        )

    def get_fieldsets(self, request: HttpRequest, obj: Client | None = None) -> Any:
        def section(name: metadata.Section) -> tuple[str, ...]:
            return tuple(setting.name for setting in metadata.SETTINGS if setting.section is name)

        authentication = section(metadata.Section.AUTHENTICATION)
        if obj is not None:  # each registered key as it was saved, under the box it was pasted into
            at = authentication.index("jwks") + 1
            authentication = (*authentication[:at], "registered_keys", "registered_certificates", *authentication[at:])
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("client_id", *section(metadata.Section.CLIENT), "user")}),
            (metadata.Section.TOKENS.value, {"fields": section(metadata.Section.TOKENS)}),
            ("Tenants and roles", {"fields": ("tenants", "roles")}),
            (metadata.Section.AUTHENTICATION.value, {"fields": authentication}),
        ]
        if obj is not None:
            fieldsets.append(("History", {"fields": ("created", "updated")}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Client | None = None) -> Any:
        # The client ID is what callers know it by: it never changes.
        return ("client_id", "created", "updated", "registered_keys", "registered_certificates") if obj else ()

    @admin.display(description="Registered keys")
    def registered_keys(self, client: Client) -> str:
        return _key_table(jwks.describe(client.jwks))

    @admin.display(description="Registered certificates")
    def registered_certificates(self, client: Client) -> str:
        return _certificate_table(jwks.describe_certificates(client.jwks))

    def get_inlines(self, request: HttpRequest, obj: Client | None) -> Any:
        return self.inlines if obj is not None else ()

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return setting_formfield(db_field) or super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if db_field.name == "roles":
            kwargs["queryset"] = Role.objects.select_related("tenant")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The secret page follows the save; "save and add another" would skip it.
        extra_context = {**(extra_context or {}), "show_save_and_add_another": False,
                         "show_save_and_continue": False}
        return super().add_view(request, form_url, extra_context)

    @admin.display(description="tenants")
    def tenant_list(self, client: Client) -> str:
        return ", ".join(tenant.slug for tenant in client.tenants.all())

    @admin.display(description="scopes")
    def scope_list(self, client: Client) -> str:
        return " ".join(client.allowed_scopes)

    @admin.display(description="live secrets", ordering="live_secret_count")
    def live_secrets(self, client: Client) -> int:
        return getattr(client, "live_secret_count", 0)

    @admin.display(description="last used", ordering="secrets_last_used", empty_value="never")
    def last_used(self, client: Client) -> datetime | None:
        return getattr(client, "secrets_last_used", None)

    # -- writes, through the services ------------------------------------------

    @sensitive_variables("issued")
    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        data = form.cleaned_data
        tenants = [tenant.slug for tenant in data["tenants"]]
        roles = [role.claim_value for role in data["roles"]]
        if change:
            fields = {name: data[name] for name in services.UPDATABLE_FIELDS if name in data}
            services.client_update(client=obj, fields=fields, tenants=tenants, roles=roles, owner=data["user"])
            return
        client, issued = services.client_create(
            client_id=data["client_id"], owner=data["user"], tenants=tenants, roles=roles,
            **{name: data[name] for name in services.UPDATABLE_FIELDS if name in data},
        )
        # The admin goes on with `obj` (history entry, response): make it the saved row.
        for field in Client._meta.concrete_fields:
            setattr(obj, field.attname, getattr(client, field.attname))
        obj._state.adding, obj._state.db = False, client._state.db
        setattr(obj, _ISSUED, issued)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The services set tenants and roles; the read-only secrets inline writes nothing
        # but still saves, for the admin's change message.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: Client) -> None:
        services.client_delete(client=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            services.client_delete(client=client)

    @sensitive_variables("issued")
    def response_add(self, request: HttpRequest, obj: Client, post_url_continue: str | None = None) -> HttpResponse:
        issued = getattr(obj, _ISSUED, None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        delattr(obj, _ISSUED)
        return self._reveal(
            request, obj, issued, title="Client created",
            summary=f"Client {obj.client_id} was created with this secret.",
        )

    # -- per-client actions: buttons on the client page --------------------------

    def get_urls(self) -> list[URLPattern]:
        def route(suffix: str, view: Any) -> URLPattern:
            name = f"{self.opts.app_label}_{self.opts.model_name}_{suffix.replace('-', '_')}"
            return path(f"<path:object_id>/{suffix}/", self.admin_site.admin_view(view), name=name)

        dashboard = path(
            "dashboard/", self.admin_site.admin_view(self.dashboard_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_dashboard",
        )
        return [
            dashboard,
            route("reset-secret", self.reset_secret_view),
            route("add-secret", self.add_secret_view),
            route("revoke-secret", self.revoke_secret_view),
            route("create-api-key", self.create_api_key_view),
            route("revoke-api-key", self.revoke_api_key_view),
            route("enable", self.enable_view),
            route("disable", self.disable_view),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        client = self.get_object(request, unquote(object_id))
        if client is not None:
            chart = usage_report.hourly_chart(ClientUsage.objects.filter(client=client), now=timezone.now())
            extra_context = {**(extra_context or {}), "usage_chart": chart}
        return super().change_view(request, object_id, form_url, extra_context)

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """The registry at a glance (``clients.usage_report.dashboard``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        board = usage_report.dashboard(now=now)
        tables = [
            {"title": "Busiest clients, last 7 days", "id": "dashboard-busiest", "heading": "tokens issued",
             "rows": [(c, c.week_issued) for c in board.busiest], "empty": "No tokens issued in 7 days."},
            {"title": "Clients with failed authentications, last 7 days", "id": "dashboard-failing",
             "heading": "failed authentications", "rows": [(c, c.week_failed) for c in board.failing],
             "empty": "No failed authentications in 7 days."},
            {"title": "Clients unused for 30 days", "id": "dashboard-unused", "heading": "last token",
             "rows": [(c, _shown(c.last_hour, "never")) for c in board.unused],
             "empty": "Every client older than 30 days got a token in them."},
            {"title": "Secrets expiring within 14 days", "id": "dashboard-expiring", "heading": "secret expires",
             "rows": [(s.client, f"{s.prefix}… {_shown(s.expires, '')}") for s in board.expiring_secrets],
             "empty": "No live secret expires within 14 days."},
            {"title": "API keys expiring within 14 days", "id": "dashboard-expiring-keys", "heading": "API key expires",
             "rows": [(k.client, f"{k.prefix}… {k.name}: {_shown(k.expires, '')}") for k in board.expiring_api_keys],
             "empty": "No live API key expires within 14 days."},
        ]
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Usage dashboard",
            "dashboard": board, "tables": tables,
        }
        return render(request, "admin/clients/dashboard.html", context)

    @sensitive_variables("issued")
    def reset_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        form = ConfirmForm(request.POST if request.method == "POST" else None, client=client)
        if form.is_valid():
            issued = services.secret_reset(client=client)
            self.log_change(request, client, f"Reset the secret: all others revoked; new {issued.record.prefix}…")
            return self._reveal(
                request, client, issued, title="Secret reset",
                summary="Every other secret of this client has stopped working. Give this one to its callers.",
            )
        return self._action_page(
            request, client, form, action="Reset secret", submit="Reset the secret", intro=[
                "A new secret replaces every current secret of this client, which stop working at once: its "
                "callers get invalid_client until they are given the new secret.",
                "To change secrets without downtime, use “Add rotation secret” instead, move the callers, "
                "then revoke the old secret.",
            ], warning="The current secrets stop working immediately.", danger=True,
        )

    @sensitive_variables("issued")
    def add_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        form = SecretAddForm(request.POST if request.method == "POST" else None, client=client)
        if form.is_valid():
            now = timezone.now()
            old_in, new_in = form.cleaned_data["old_secrets_expire_in"], form.cleaned_data["expires_in"]
            others_expire = now + timedelta(seconds=old_in) if old_in else None
            issued = services.secret_add(
                client=client, others_expire=others_expire,
                expires=now + timedelta(seconds=new_in) if new_in else None,
            )
            until = f"until {_shown(others_expire, '')}" if others_expire else "until you revoke them"
            self.log_change(
                request, client, f"Added secret {issued.record.prefix}…; other secrets valid {until}"
            )
            return self._reveal(
                request, client, issued, title="Rotation secret added",
                summary=f"The client's other live secrets keep working {until}. Move its callers to this one.",
            )
        return self._action_page(
            request, client, form, action="Add rotation secret", submit="Add a secret", intro=[
                "A new secret is added beside the current ones, which keep working: move the client's callers "
                "to the new secret, then revoke the old one (or let it expire).",
            ],
        )

    def revoke_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        live = list(ClientSecret.objects.filter(client=client).live(timezone.now()))
        form = SecretRevokeForm(
            request.POST if request.method == "POST" else None, secrets=live,
            initial={"secret_prefix": request.GET.get("prefix", "")},
        )
        if form.is_valid():
            prefix = form.cleaned_data["secret_prefix"]
            try:
                services.secret_revoke(client=client, prefix=prefix)
            except ClientSecret.DoesNotExist:
                form.add_error("secret_prefix", "That secret is no longer live.")
            else:
                self.log_change(request, client, f"Revoked secret {prefix}…")
                self.message_user(request, f"Secret {prefix}… revoked: it no longer works.", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(client))
        intro = ["Choose the secret to revoke. Callers still using it get invalid_client from then on."]
        if not live:
            intro = ["This client has no live secret. Add one or reset the secret to give it one."]
        return self._action_page(
            request, client, form, action="Revoke secret", submit="Revoke", intro=intro, can_submit=bool(live),
            danger=True,
            warning="This is the client's only live secret: it will get no tokens until it is given a new one."
            if len(live) == 1 else "",
        )

    @sensitive_variables("issued", "context")
    def create_api_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        form = ApiKeyCreateForm(request.POST if request.method == "POST" else None, client=client)
        if form.is_valid():
            data = form.cleaned_data
            try:
                issued = services.api_key_create(
                    client=client, name=data["name"], scopes=data["scope"], expires_in=data["expires_in"],
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                self.log_change(request, client, f"Created API key {issued.record.prefix}… ({issued.record.name})")
                context = {
                    **self.admin_site.each_context(request),
                    "opts": self.opts, "title": "API key created", "client": client, "api_key": issued.api_key,
                    "record": issued.record, "scope": " ".join(issued.record.scopes),
                    "change_url": self._change_url(client), "issuer": settings.ISSUER,
                }
                return _render_once(request, "admin/clients/api_key_reveal.html", context)
        return self._action_page(
            request, client, form, action="Create API key", submit="Create the key", intro=[
                "An API key is a long-lived bearer credential for a job that cannot run the client credentials "
                "flow (a cron job, a webhook, a tool that sends one fixed header). Prefer short-lived tokens "
                "where the caller can get them.",
                "The key is shown once, on the next page. It stops working when it expires, when you revoke it, "
                "or when this client is disabled or deleted.",
            ],
        )

    def revoke_api_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        live = list(ApiKey.objects.filter(client=client).live(timezone.now()).order_by("-created"))
        form = ApiKeyRevokeForm(
            request.POST if request.method == "POST" else None, keys=live,
            initial={"key_prefix": request.GET.get("prefix", "")},
        )
        if form.is_valid():
            prefix = form.cleaned_data["key_prefix"]
            try:
                services.api_key_revoke(client=client, prefix=prefix)
            except ApiKey.DoesNotExist:
                form.add_error("key_prefix", "That API key is no longer live.")
            else:
                self.log_change(request, client, f"Revoked API key {prefix}…")
                self.message_user(request, f"API key {prefix}… revoked: it no longer works.", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(client))
        intro = ["Choose the API key to revoke. Every server process refuses it from its next request on."]
        if not live:
            intro = ["This client has no live API key."]
        return self._action_page(
            request, client, form, action="Revoke API key", submit="Revoke", intro=intro, can_submit=bool(live),
            danger=True,
        )

    def enable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._set_enabled_view(request, object_id, enabled=True)

    def disable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._set_enabled_view(request, object_id, enabled=False)

    def _set_enabled_view(self, request: HttpRequest, object_id: str, *, enabled: bool) -> HttpResponse:
        client = self._client_for_change(request, object_id)
        if request.method == "POST":
            self._set_enabled(request, [client], enabled=enabled)
            return HttpResponseRedirect(self._change_url(client))
        if enabled:
            intro = ["The client may get tokens again with its live secrets."]
        else:
            intro = [
                "The client gets no new tokens from now on (invalid_client). Tokens it already holds stay "
                "valid until they expire. Its secrets are kept, so enabling it again restores access.",
            ]
        verb = "Enable" if enabled else "Disable"
        return self._action_page(
            request, client, Form(), action=verb, submit=f"{verb} the client", intro=intro, danger=not enabled,
        )

    # -- changelist actions ---------------------------------------------------------

    @admin.action(description="Enable selected clients", permissions=["change"])
    def enable_clients(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable selected clients", permissions=["change"])
    def disable_clients(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, clients: Any, *, enabled: bool) -> None:
        changed = [client for client in clients if client.enabled != enabled]
        for client in changed:
            services.client_update(client=client, fields={"enabled": enabled})
            self.log_change(request, client, "Enabled" if enabled else "Disabled")
        state = "enabled" if enabled else "disabled"
        names = ", ".join(client.client_id for client in changed)
        self.message_user(
            request, f"{len(changed)} client(s) {state}" + (f": {names}." if names else "."), messages.SUCCESS
        )

    # -- helpers --------------------------------------------------------------------

    def _client_for_change(self, request: HttpRequest, object_id: str) -> Client:
        client = self.get_object(request, unquote(object_id))
        if client is None:
            raise Http404("No such client.")
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        return client

    def _change_url(self, client: Client) -> str:
        return reverse("admin:clients_client_change", args=[quote(client.pk)])

    def _action_page(
        self, request: HttpRequest, client: Client, form: Form, *, action: str, submit: str,
        intro: list[str], warning: str = "", can_submit: bool = True, danger: bool = False,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "object": client, "title": f"{action}: {client.client_id}", "action": action,
            "intro": intro, "warning": warning, "form": form, "submit": submit, "can_submit": can_submit,
            "danger": danger, "cancel_url": self._change_url(client),
        }
        return render(request, "admin/action_confirm.html", context)

    @sensitive_variables("issued", "context")
    def _reveal(
        self, request: HttpRequest, client: Client, issued: services.IssuedSecret, *, title: str, summary: str
    ) -> HttpResponse:
        """The one page that ever shows ``issued.secret``: rendered now, never cached or stored."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": title, "summary": summary, "client": client,
            "secret": issued.secret, "record": issued.record, "change_url": self._change_url(client),
            "token_url": f"{settings.ISSUER}/oauth/token",
            "use_post": client.token_endpoint_auth_method == "client_secret_post",
        }
        return _render_once(request, "admin/clients/secret_reveal.html", context)


@sensitive_variables("context")
def _render_once(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page showing a credential this once: never cached by the browser or a proxy."""
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _key_table(keys: list[tuple[str, str, str]]) -> str:
    """Each key of a registered JWK Set: its kid, type and RFC 7638 thumbprint (never key material)."""
    if not keys:
        return "None"
    rows = format_html_join(
        "", "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>", keys
    )
    return format_html(
        '<table class="registered-keys"><thead><tr><th>kid</th><th>type</th>'
        "<th>thumbprint (SHA-256)</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _certificate_table(described: list[certificates.Description]) -> str:
    """Each registered certificate (self_signed_tls_client_auth): what identifies it, never the certificate."""
    if not described:
        return "None"
    rows = format_html_join(
        "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        ((d.subject, ", ".join(d.sans) or "(none)", f"{d.not_after:%Y-%m-%d %H:%M} UTC", d.thumbprint)
         for d in described),
    )
    return format_html(
        '<table class="registered-certificates"><thead><tr><th>subject</th><th>SANs</th><th>expires</th>'
        "<th>x5t#S256</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


class ServiceWrites(admin.ModelAdmin):
    """Saves and deletes through ``clients.services`` (so they leave audit events, as the
    API's do) instead of the admin's own ``save()`` and ``delete()``."""

    def create(self, form: Any) -> Any:
        raise NotImplementedError

    def update(self, obj: Any, fields: dict[str, Any]) -> Any:
        raise NotImplementedError

    def delete(self, obj: Any) -> None:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            if form.changed_data:
                self.update(obj, {name: form.cleaned_data[name] for name in form.changed_data})
            return
        saved = self.create(form)
        obj.pk, obj._state.adding, obj._state.db = saved.pk, False, saved._state.db

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete(obj)


@admin.register(Tenant)
class TenantAdmin(ServiceWrites):
    form = TenantForm
    fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_display = ("slug", "name", "client_count", "role_count", "created")
    list_filter = ("created",)
    search_fields = ("slug", "name")
    search_help_text = "Search by slug or name."

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(
            client_total=Count("clients", distinct=True), role_total=Count("roles", distinct=True)
        )

    def create(self, form: Any) -> Tenant:
        return services.tenant_create(slug=form.cleaned_data["slug"], name=form.cleaned_data["name"])

    def update(self, obj: Tenant, fields: dict[str, Any]) -> Tenant:
        return services.tenant_update(tenant=obj, fields=fields)

    def delete(self, obj: Tenant) -> None:
        services.tenant_delete(tenant=obj)

    @admin.display(description="clients", ordering="client_total")
    def client_count(self, tenant: Tenant) -> int:
        return getattr(tenant, "client_total", 0)

    @admin.display(description="roles", ordering="role_total")
    def role_count(self, tenant: Tenant) -> int:
        return getattr(tenant, "role_total", 0)


@admin.register(Role)
class RoleAdmin(ServiceWrites):
    form = RoleForm
    fields = ("name", "tenant")
    list_display = ("name", "tenant", "claim", "client_count", "created")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    search_fields = ("name", "tenant__slug")
    search_help_text = "Search by role name or tenant slug."

    def get_queryset(self, request: HttpRequest) -> QuerySet[Role]:
        return super().get_queryset(request).annotate(client_total=Count("clients", distinct=True))

    def create(self, form: Any) -> Role:
        return services.role_create(name=form.cleaned_data["name"], tenant=form.cleaned_data["tenant"])

    def update(self, obj: Role, fields: dict[str, Any]) -> Role:
        return services.role_update(role=obj, fields=fields)

    def delete(self, obj: Role) -> None:
        services.role_delete(role=obj)

    @admin.display(description="in tokens as")
    def claim(self, role: Role) -> str:
        return role.claim_value

    @admin.display(description="clients", ordering="client_total")
    def client_count(self, role: Role) -> int:
        return getattr(role, "client_total", 0)


@admin.register(TrustedIssuer)
class TrustedIssuerAdmin(ServiceWrites):
    """Platforms whose JWTs authenticate workloads as clients (their federated identities)."""

    form = TrustedIssuerForm
    list_display = ("name", "issuer", "enabled", "audience_list")
    list_filter = ("enabled",)
    search_fields = ("name", "issuer")
    search_help_text = "Search by name or issuer."

    def get_fields(self, request: HttpRequest, obj: TrustedIssuer | None = None) -> Any:
        fields = ("name", "issuer", "enabled", "jwks_uri", "jwks", "audiences", "max_token_lifetime")
        if obj is None:
            return fields
        at = fields.index("jwks") + 1  # the keys as saved, under the box they were pasted into
        return (*fields[:at], "registered_keys", *fields[at:], "created", "updated")

    def get_readonly_fields(self, request: HttpRequest, obj: TrustedIssuer | None = None) -> Any:
        return ("registered_keys", "created", "updated") if obj is not None else ()

    def create(self, form: Any) -> TrustedIssuer:
        return services.trusted_issuer_create(**form.cleaned_data)

    def update(self, obj: TrustedIssuer, fields: dict[str, Any]) -> TrustedIssuer:
        # The form has already written its values onto ``obj``: the service compares against
        # the stored row (to follow a rename into clients and to record what changed).
        return services.trusted_issuer_update(trusted_issuer=TrustedIssuer.objects.get(pk=obj.pk), fields=fields)

    def delete(self, obj: TrustedIssuer) -> None:
        services.trusted_issuer_delete(trusted_issuer=obj)

    @admin.display(description="audiences")
    def audience_list(self, issuer: TrustedIssuer) -> str:
        return " ".join(issuer.audiences) or "this server"

    @admin.display(description="Registered keys")
    def registered_keys(self, issuer: TrustedIssuer) -> str:
        # A trust bundle may also hold keys of other uses (SPIFFE's x509-svid), which the token
        # path skips: list the usable ones, as ``jwks.describe`` does for a client's strict set.
        try:
            keys = jwks.parse_key_set(issuer.jwks, strict=False) if issuer.jwks else ()
        except jwks.InvalidKeySet:
            keys = ()
        return _key_table([(key.kid or "(none)", key.kind, key.thumbprint) for key in keys])


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody edits or deletes history from the admin."""

    list_display = ("at", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("target", "actor")
    fields = ("at", "actor", "action", "target", "changes")
    readonly_fields = fields
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
