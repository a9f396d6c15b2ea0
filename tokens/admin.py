"""The signing keys page: read-only rows. Keys change only by rotation and pruning, so no key
that signed a live token is ever edited or deleted."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from tokens.keys import key_prune, key_rotate
from tokens.models import SigningKey


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("signing", "signing"), ("published", "published"), ("retired", "retired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "signing":
            return queryset.filter(signing=True)
        if self.value() == "published":
            return queryset.filter(signing__isnull=True).published(now)  # type: ignore[attr-defined]
        if self.value() == "retired":
            return queryset.filter(published_until__lte=now)
        return queryset


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """``signing`` signs new tokens; ``published`` ones stay in the JWKS until their tokens expire."""

    list_display = ("kid", "algorithm", "state", "created", "rotated_out", "published_until")
    list_filter = (StateFilter, "algorithm")
    search_fields = ("kid",)
    fields = ("kid", "algorithm", "state", "encrypted", "created", "rotated_out", "published_until", "public_key")
    readonly_fields = fields
    change_list_template = "admin/tokens/signingkey/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="state")
    def state(self, key: SigningKey) -> str:
        return key.state(timezone.now())

    @admin.display(description="public key (JWK)")
    def public_key(self, key: SigningKey) -> str:
        return format_html("<pre>{}</pre>", json.dumps(key.public_jwk, indent=2))

    def _may(self, request: HttpRequest, action: str) -> bool:
        """Rotating makes a key (``add``); pruning deletes retired ones (``delete``)."""
        codename = get_permission_codename(action, self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}), "can_rotate": self._may(request, "add"), "can_prune": self._may(request, "delete"),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("rotate/", self.admin_site.admin_view(self.rotate_view), name=f"{name}_rotate"),
            path("prune/", self.admin_site.admin_view(self.prune_view), name=f"{name}_prune"),
            *super().get_urls(),
        ]

    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        if not self._may(request, "add"):
            raise PermissionDenied
        if request.method == "POST":
            key = key_rotate()
            self.log_addition(request, key, "Rotated: this key now signs new tokens")
            self.message_user(
                request, f"Key {key.kid} ({key.algorithm}) now signs new tokens. The previous key stays "
                "published until the tokens it signed have expired.", messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:tokens_signingkey_changelist"))
        return self._action_page(request, action="Rotate signing key", submit="Rotate now", intro=[
            "A new key starts signing every new access token at once, on every server process within a few "
            "seconds. The current key stops signing but stays in the JWKS until the tokens it signed have "
            "expired, so resource servers keep accepting them; then it is retired.",
        ])

    def prune_view(self, request: HttpRequest) -> HttpResponse:
        if not self._may(request, "delete"):
            raise PermissionDenied
        if request.method == "POST":
            deleted = key_prune()
            self.message_user(request, f"{deleted} retired key(s) deleted.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:tokens_signingkey_changelist"))
        return self._action_page(request, action="Delete retired keys", submit="Delete retired keys", intro=[
            "Retired keys are no longer published and no live token was signed with them. Deleting them "
            "changes nothing for callers or resource servers.",
        ])

    def _action_page(self, request: HttpRequest, *, action: str, submit: str, intro: list[str]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": action, "action": action, "intro": intro, "form": Form(),
            "submit": submit, "can_submit": True, "cancel_url": reverse("admin:tokens_signingkey_changelist"),
        }
        return render(request, "admin/action_confirm.html", context)
