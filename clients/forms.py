"""Admin forms: the registry's fields as operators type them.

Lists (scopes, audiences, IP ranges) are plain text, one item per line or separated
by spaces; lifetimes are durations such as ``300``, ``90s``, ``10m`` or ``1h``.  The
forms only parse and validate: every write goes through ``clients.services``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from authserver.durations import parse_duration
from clients import jwks, metadata
from clients.models import (
    SCOPE_TOKEN_PATTERN,
    ApiKey,
    Client,
    ClientSecret,
    Role,
    Tenant,
    TrustedIssuer,
    validate_client_id,
)
from clients.secrets import generate_client_id

_LIST_SEPARATORS = re.compile(r"[\s,]+")


def format_duration(seconds: int) -> str:
    """The shortest exact spelling ``parse_duration`` reads back: 3600 -> ``1h``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class TextListField(forms.CharField):
    """A list typed as text: items separated by spaces, commas or new lines."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})

    def __init__(self, *, joiner: str = " ", **kwargs: Any) -> None:
        self.joiner = joiner
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return self.joiner.join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return list(dict.fromkeys(item for item in _LIST_SEPARATORS.split(text) if item))

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial: Any, data: Any) -> bool:
        return list(initial or []) != self.to_python(data)


class ScopeListField(TextListField):
    def validate(self, value: Any) -> None:
        super().validate(value)
        bad = [scope for scope in value if not SCOPE_TOKEN_PATTERN.fullmatch(scope)]
        if bad:
            raise ValidationError(
                "Not a scope: %(bad)s. A scope is printable ASCII without spaces, quotes or backslashes.",
                code="invalid_scope", params={"bad": " ".join(bad)},
            )


class CidrListField(TextListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(joiner="\n", **kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        bad = []
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                bad.append(cidr)
        if bad:
            raise ValidationError(
                "Not an IP address or CIDR range: %(bad)s. Write e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32.",
                code="invalid_cidr", params={"bad": ", ".join(bad)},
            )


class DurationTextField(forms.CharField):
    """Seconds typed as ``300``, ``90s``, ``10m``, ``1h`` or ``1d``; empty is ``None``."""

    def __init__(self, *, placeholder: str = "e.g. 10m", **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 10, "placeholder": placeholder}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return format_duration(value) if isinstance(value, int) and value > 0 else value

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_duration(text)
        except ValueError:
            raise ValidationError(
                "Not a duration: %(value)s. Write a positive number of seconds, or e.g. 90s, 10m, 1h, 1d.",
                code="invalid_duration", params={"value": text},
            ) from None

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return initial != self.to_python(data)
        except ValidationError:
            return True


def key_set_from_text(text: str) -> dict[str, Any] | None:
    """A JWK Set typed as JSON, or PEM public keys (each given its thumbprint as ``kid``);
    ``None`` for empty text.  Raises ``jwks.InvalidKeySet``."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("-----BEGIN"):
        return jwks.key_set_from_pem(text)
    try:
        value = json.loads(text)
    except ValueError:
        raise jwks.InvalidKeySet("Paste a JWK Set (JSON) or PEM public keys.") from None
    if not isinstance(value, dict):
        raise jwks.InvalidKeySet('A JWK Set is a JSON object with a "keys" array (RFC 7517 §5).')
    return value


class JwksTextField(forms.CharField):
    """A JWK Set pasted as JSON, or PEM public keys; shown back as indented JSON."""

    widget = forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false", "class": "vLargeTextField"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, sort_keys=True)  # PostgreSQL's jsonb keeps no key order
        return value

    def to_python(self, value: Any) -> dict[str, Any] | None:  # type: ignore[override]
        try:
            return key_set_from_text(super().to_python(value) or "")
        except jwks.InvalidKeySet as error:
            raise ValidationError(str(error), code="invalid_jwks") from None

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return (initial or None) != self.to_python(data)
        except ValidationError:
            return True

    def bound_data(self, data: Any, initial: Any) -> Any:
        """A refused private key is not shown back on the page that refuses it."""
        try:
            jwks.parse_key_set(key_set_from_text(data or "") or {"keys": [{}]})
        except jwks.InvalidKeySet as error:
            if "private" in str(error):
                return ""
        return data


class JsonListField(forms.CharField):
    """A JSON list typed as text (federated identities); shown back indented."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 80, "spellcheck": "false", "class": "vLargeTextField"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return json.dumps(value, indent=2, sort_keys=True) if value else ""
        return value

    def to_python(self, value: Any) -> list[Any]:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValidationError("Not JSON: write a list of objects, e.g. [{...}].", code="invalid_json") from None
        if not isinstance(parsed, list):
            raise ValidationError("Write a JSON list, e.g. [{...}].", code="invalid_json")
        return parsed

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return list(initial or []) != self.to_python(data)
        except ValidationError:
            return True


def setting_formfield(db_field: Any) -> forms.Field | None:
    """The form field of a client setting (``clients.metadata``); ``None`` for other fields."""
    setting = metadata.BY_NAME.get(db_field.name)
    if setting is None:
        return None
    options: dict[str, Any] = {"label": setting.label, "help_text": setting.help}
    kind = setting.kind
    if kind is metadata.Kind.SCOPES:
        return ScopeListField(**options)
    if kind is metadata.Kind.LIST:
        return TextListField(joiner="\n", **options)
    if kind is metadata.Kind.CIDRS:
        return CidrListField(**options)
    if kind is metadata.Kind.DURATION:
        return DurationTextField(placeholder="server default", **options)
    if kind is metadata.Kind.JWKS:
        return JwksTextField(**options)
    if kind is metadata.Kind.IDENTITIES:
        return JsonListField(**options)
    if kind is metadata.Kind.CHOICES:
        return forms.MultipleChoiceField(
            choices=setting.choices, required=False, initial=setting.create_default,
            widget=forms.CheckboxSelectMultiple, **options,
        )
    field: forms.Field | None = db_field.formfield(**options)  # TEXT, BOOLEAN, CHOICE: the model's own
    return field


def _formfield(db_field: Any, **kwargs: Any) -> forms.Field | None:
    return setting_formfield(db_field) or db_field.formfield(**kwargs)


class ClientForm(forms.ModelForm):
    """The client page.  ``ClientAdmin`` writes the result with ``client_create``/``client_update``."""

    client_id = forms.CharField(
        label="Client ID", required=False, max_length=255,
        help_text=(
            "The name callers send as their username (client_id). Keep the random one or choose a readable "
            "one such as billing-backend: printable ASCII without spaces. It cannot be changed later."
        ),
    )

    class Meta:
        model = Client
        fields = ("client_id", "user", "tenants", "roles", *metadata.BY_NAME)
        formfield_callback = _formfield
        labels = {"user": "Owner"}
        help_texts = {
            "user": "The person responsible for this client (optional).",
            "tenants": "Tenants this client acts for: they appear in its tokens' <code>tenants</code> claim, "
                       "and it may ask for the scope <code>tenant:&lt;slug&gt;</code> of each.",
            "roles": "Roles granted to this client: they appear in its tokens' <code>roles</code> claim.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The admin appends "Hold down Control..." to these, which its two-box widget does not need.
        for name in ("tenants", "roles"):
            if name in self.fields:
                self.fields[name].help_text = self.Meta.help_texts[name]
        if self.instance._state.adding:
            # Offered on the page, so that posting the same form twice makes one client, not two.
            self.initial.setdefault("client_id", self.instance.client_id)

    def clean_client_id(self) -> str:
        client_id: str = self.cleaned_data["client_id"].strip() or generate_client_id()
        validate_client_id(client_id)
        return client_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        allowed, default = cleaned.get("allowed_scopes"), cleaned.get("default_scopes")
        if allowed is not None and default:
            missing = [scope for scope in default if scope not in allowed]
            if missing:
                self.add_error(
                    "default_scopes",
                    f"Default scopes must also be allowed scopes; not allowed: {' '.join(missing)}.",
                )
        return cleaned


class ConfirmForm(forms.Form):
    """A confirmation that refuses to run twice.

    ``seen`` records the client's newest secret when the page was shown: a form
    posted again (reload, back button) after its action already ran is refused
    instead of resetting or adding a second time.
    """

    seen = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        self.client = client
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["seen"] = newest_secret_id(client)

    def clean_seen(self) -> int:
        seen: int = self.cleaned_data["seen"]
        if seen != newest_secret_id(self.client):
            raise ValidationError(
                "The client's secrets changed since this page was shown (was it submitted already?). "
                "Nothing was done; check the client page before trying again.",
                code="stale",
            )
        return seen


def newest_secret_id(client: Client) -> int:
    newest = ClientSecret.objects.filter(client=client).order_by("-id").values_list("id", flat=True).first()
    return newest or 0


class SecretAddForm(ConfirmForm):
    old_secrets_expire_in = DurationTextField(
        label="Current secrets stop working after", placeholder="e.g. 7d",
        help_text=(
            "Time for callers to move to the new secret, e.g. <code>1h</code> or <code>7d</code>; after it the "
            "client's current secrets stop working. Empty: they keep working until you revoke them."
        ),
    )
    expires_in = DurationTextField(
        label="New secret expires after", placeholder="never",
        help_text="Empty: the new secret works until it is revoked or reset.",
    )


class SecretRevokeForm(forms.Form):
    secret_prefix = forms.ChoiceField(
        label="Secret to revoke", widget=forms.RadioSelect,
        help_text="Secrets are known by their first characters. A revoked secret stops working at once.",
    )

    def __init__(self, *args: Any, secrets: list[ClientSecret], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["secret_prefix"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(secret.prefix, _describe(secret)) for secret in secrets]


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _describe(secret: ClientSecret) -> str:
    used = _when(secret.last_used) if secret.last_used else "never"
    expires = f", expires {_when(secret.expires)}" if secret.expires else ""
    return f"{secret.prefix}… created {_when(secret.created)}, last used {used}{expires}"


def newest_api_key_id(client: Client) -> int:
    newest = ApiKey.objects.filter(client=client).order_by("-id").values_list("id", flat=True).first()
    return newest or 0


class ApiKeyCreateForm(forms.Form):
    """The admin's "Create API key"; ``seen`` refuses a form posted again after it made a key."""

    name = forms.CharField(
        max_length=255, help_text="What the key is for, e.g. <code>nightly export cron</code>.",
        widget=forms.TextInput(attrs={"size": 40}),
    )
    scope = forms.CharField(
        required=False, label="Scopes", widget=forms.TextInput(attrs={"size": 60}),
        help_text="Separated by spaces, each allowed for this client. Empty: the client's default scopes.",
    )
    expires_in = DurationTextField(
        label="Expires after", placeholder="90d",
        help_text="e.g. <code>12h</code> or <code>30d</code>. Empty: API_KEY_DEFAULT_LIFETIME; "
        "at most API_KEY_MAX_LIFETIME.",
    )
    seen = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        self.client = client
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["seen"] = newest_api_key_id(client)

    def clean_scope(self) -> list[str] | None:
        scopes = self.cleaned_data["scope"].split()
        return scopes or None

    def clean_seen(self) -> int:
        seen: int = self.cleaned_data["seen"]
        if seen != newest_api_key_id(self.client):
            raise ValidationError(
                "The client's API keys changed since this page was shown (was it submitted already?). "
                "Nothing was done; check the client page before trying again.",
                code="stale",
            )
        return seen


class ApiKeyRevokeForm(forms.Form):
    key_prefix = forms.ChoiceField(
        label="API key to revoke", widget=forms.RadioSelect,
        help_text="Keys are known by their first characters. A revoked key stops working at once, everywhere.",
    )

    def __init__(self, *args: Any, keys: list[ApiKey], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["key_prefix"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (key.prefix, f"{key.prefix}… {key.name}, scope {' '.join(key.scopes) or '(none)'}, "
                         f"expires {_when(key.expires)}")
            for key in keys
        ]


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ("name", "slug")
        help_texts = {
            "name": "A human-readable name, e.g. the customer or business unit.",
            "slug": "The short name in tokens (the <code>tenants</code> claim) and in the scope "
                    "<code>tenant:&lt;slug&gt;</code>: lowercase letters, digits, hyphens and underscores.",
        }


class RoleForm(forms.ModelForm):
    class Meta:
        model = Role
        fields = ("name", "tenant")
        help_texts = {
            "name": "The role's name, without spaces or slashes, e.g. <code>reader</code>.",
            "tenant": "Empty for a global role (in tokens as <code>name</code>); otherwise the role belongs to "
                      "this tenant (in tokens as <code>tenant/name</code>).",
        }


class TrustedIssuerForm(forms.ModelForm):
    """The trusted issuer page.  ``TrustedIssuerAdmin`` writes it with the services."""

    jwks = JwksTextField(
        label="Static keys",
        help_text="Paste its JWK Set (JSON, e.g. a SPIFFE trust bundle) or PEM public keys, for an issuer whose "
        "discovery this server cannot reach. Empty: keys are fetched from the JWKS URI.",
    )
    audiences = TextListField(
        joiner="\n", label="Audiences",
        help_text="The <code>aud</code> values its tokens may carry, one per line. Empty: this server's issuer "
        "identifier.",
    )
    max_token_lifetime = DurationTextField(
        required=True, initial="24h", placeholder="24h", label="Max token lifetime",
        help_text="The longest a token may live (<code>exp - iat</code>), e.g. <code>1h</code> or "
        "<code>24h</code>.",
    )

    class Meta:
        model = TrustedIssuer
        fields = ("name", "issuer", "enabled", "jwks_uri", "jwks", "audiences", "max_token_lifetime")
        labels = {"jwks_uri": "JWKS URI"}
