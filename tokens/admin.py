from __future__ import annotations

from django.contrib import admin

from tokens.models import SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "algorithm", "created", "rotated_out", "published_until")
    fields = ("kid", "algorithm", "created", "rotated_out", "published_until", "public_jwk")
    readonly_fields = fields

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
