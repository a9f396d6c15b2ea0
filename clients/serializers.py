"""Management API shapes (RFC 7591 §2 names): explicit input and output serializers.

JSON names are RFC 7591 §2 client metadata names where one exists (``client_name``,
``grant_types``, ``scope``, ``token_endpoint_auth_method``), our own otherwise.  Input
serializers only parse and validate; writes go through ``clients.services``.  No
serializer here has a field for a secret's hash, so none can ever render one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from authserver.durations import parse_duration
from clients import metadata
from clients.models import SCOPE_TOKEN_PATTERN, Client, GrantType, Tenant, validate_client_id
from clients.services import IssuedApiKey, IssuedSecret

# Model field -> API field, for errors raised by the services (which speak model names).
API_NAMES: dict[str, str] = {**metadata.API_NAMES, NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY}
SAME_NAMES: dict[str, str] = {NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY}
MAX_TTL_SECONDS = 2**31 - 1  # the column is a PositiveIntegerField


def api_errors(error: DjangoValidationError, names: Mapping[str, str] = API_NAMES) -> serializers.ValidationError:
    """A service's ``ValidationError`` as a DRF one keyed by API field names (``names``:
    model name -> API name; tenants and roles pass ``SAME_NAMES``)."""
    if hasattr(error, "error_dict"):
        return serializers.ValidationError({names.get(k, k): v for k, v in error.message_dict.items()})
    return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: error.messages})


# --- fields ------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "string",
        "description": "Space-delimited scope tokens (RFC 6749 §3.3).",
        "example": "invoices:read invoices:write",
    }
)
class ScopeField(serializers.Field):
    """A space-delimited scope string (RFC 6749 §3.3, RFC 7591 §2) <-> a list of scope-tokens."""

    default_error_messages = {
        "invalid": "Expected a string of space-delimited scopes.",
        "invalid_token": "{token!r} is not a scope: printable ASCII without spaces, quotes or backslashes.",
    }

    def to_internal_value(self, data: object) -> list[str]:
        if not isinstance(data, str):
            self.fail("invalid")
        tokens = data.split()
        for token in tokens:
            if not SCOPE_TOKEN_PATTERN.fullmatch(token):
                self.fail("invalid_token", token=token)
        return list(dict.fromkeys(tokens))

    def to_representation(self, value: list[str]) -> str:
        return " ".join(value)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_TTL_SECONDS},
            {"type": "string", "pattern": r"^\s*\d{1,9}\s*[smhd]?\s*$", "example": "10m"},
        ],
        "description": "Access token lifetime in seconds; also accepts 90s, 10m, 1h, 1d. "
        "null: the server default (ACCESS_TOKEN_TTL). Always returned in seconds.",
    }
)
class TokenLifetimeField(serializers.Field):
    """Seconds, or a duration as operators write them (``90s``, ``10m``, ``1h``, ``1d``)."""

    default_error_messages = {
        "invalid": "Expected a positive number of seconds or a duration such as 90s, 10m, 1h, 1d.",
        "max_value": f"At most {MAX_TTL_SECONDS} seconds.",
    }

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        try:
            seconds = parse_duration(data)
        except ValueError:
            self.fail("invalid")
        if seconds > MAX_TTL_SECONDS:
            self.fail("max_value")
        return seconds

    def to_representation(self, value: int) -> int:
        return value


class OptionalChoiceField(serializers.ChoiceField):
    """One of a model field's choices, or unset: "" in the model, null (or "" on input) here."""

    def __init__(self, *, choices: Any, **kwargs: Any) -> None:
        super().__init__(choices=[value for value, _ in choices if value], allow_null=True, allow_blank=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]  # null for unset
        return value or None

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, ""
        return super().validate_empty_values(data)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 20}},
        "description": "A JWK Set (RFC 7517 §5) of public signing keys; null: none.",
        "example": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "...", "y": "..."}]},
    }
)
class JwksField(serializers.JSONField):
    """A JWK Set as JSON, or null; the model validates its keys (``clients.jwks``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)


@extend_schema_field(
    {
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "object",
            "required": ["trusted_issuer", "subject"],
            "properties": {
                "trusted_issuer": {"type": "string", "description": "A trusted issuer's name."},
                "subject": {"type": "string", "description": "The exact sub, or a pattern with *."},
                "claims": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            },
        },
        "example": [{"trusted_issuer": "prod-cluster", "subject": "system:serviceaccount:payments:*"}],
    }
)
class IdentitiesField(serializers.JSONField):
    """Federated identities as JSON; the model validates them."""


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so that a typo is a 400 rather than silently ignored.

    ``read_only_names`` are fields of the resource's output that cannot be written;
    they get a message of their own.
    """

    read_only_names: frozenset[str] = frozenset()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            errors.update(error.detail)
        if isinstance(data, Mapping):
            writable = {field.field_name for field in self._writable_fields}
            for key in sorted(set(data) - writable, key=str):
                errors[str(key)] = [
                    "This field is read-only." if key in self.read_only_names else "Unknown field."
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return value


# --- secrets -----------------------------------------------------------------------------


class SecretSerializer(serializers.Serializer):
    """One secret as operators see it: never the secret, never its hash."""

    prefix = serializers.CharField(help_text="The secret's first characters, to tell secrets apart.")
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField(allow_null=True, help_text="null: never expires.")
    last_used = serializers.DateTimeField(allow_null=True, help_text="Last successful token request.")
    revoked = serializers.DateTimeField(allow_null=True, help_text="null: not revoked.")


class IssuedSecretSerializer(serializers.Serializer):
    """A secret just made, shown this once (RFC 7591 §3.2.1 names)."""

    client_id = serializers.CharField(source="record.client.client_id")
    client_secret = serializers.CharField(source="secret", help_text="Shown only in this response.")
    client_secret_expires_at = serializers.SerializerMethodField(
        help_text="RFC 7591: expiry as seconds since the epoch, 0 if it never expires."
    )
    prefix = serializers.CharField(source="record.prefix")
    created = serializers.DateTimeField(source="record.created")
    expires = serializers.DateTimeField(source="record.expires", allow_null=True)

    def get_client_secret_expires_at(self, issued: IssuedSecret) -> int:
        return _expires_at(issued)


def _expires_at(issued: IssuedSecret) -> int:
    expires = issued.record.expires
    return int(expires.timestamp()) if expires is not None else 0


class SecretAddSerializer(StrictSerializer):
    """POST /client/{client_id}/secrets: one more secret, for rotation without downtime."""

    expires = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the new secret stops working; null: never."
    )
    others_expire = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="When the client's other live secrets stop working (only ever brought forward); "
        "null or absent: they stay as they are.",
    )

    def validate_expires(self, value: Any) -> Any:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("A new secret must expire in the future.")
        return value


class UsageBucketSerializer(serializers.Serializer):
    """One hour of one client's use."""

    hour = serializers.DateTimeField(help_text="The hour's start (UTC).")
    tokens_issued = serializers.IntegerField()
    failed_authentications = serializers.IntegerField(help_text="Client authentications refused, any reason.")


class UsageSerializer(serializers.Serializer):
    client_id = serializers.CharField()
    buckets = UsageBucketSerializer(many=True, help_text="Hours with any use, oldest first, within USAGE_RETENTION.")


# --- API keys (DESIGN §9.5) ------------------------------------------------------------


class ApiKeySerializer(serializers.Serializer):
    """One API key as operators see it: never the key, never its hash."""

    prefix = serializers.CharField(help_text="The key's first characters, to tell keys apart.")
    name = serializers.CharField()
    scope = ScopeField(source="scopes", help_text="Space-delimited scopes the key carries.")
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField()
    last_used = serializers.DateTimeField(allow_null=True, help_text="Recorded at most once a minute.")
    revoked = serializers.DateTimeField(allow_null=True, help_text="null: not revoked.")


class ApiKeyCreatedSerializer(serializers.Serializer):
    """A key just made: ``api_key`` appears only in this response."""

    api_key = serializers.CharField(help_text="Shown only in this response; send as Authorization: Bearer.")

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **ApiKeySerializer().get_fields()}

    def to_representation(self, issued: IssuedApiKey) -> dict[str, Any]:
        return {"api_key": issued.api_key, **ApiKeySerializer(issued.record).data}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": r"^\s*\d{1,9}\s*[smhd]?\s*$", "example": "90d"},
        ],
        "description": "Seconds, or a duration such as 12h or 90d.",
    }
)
class DurationField(serializers.Field):
    """Seconds, or a duration as operators write them (``90s``, ``10m``, ``12h``, ``90d``)."""

    default_error_messages = {"invalid": "Expected a positive number of seconds or a duration such as 12h or 90d."}

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        try:
            return parse_duration(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: int) -> int:
        return value


class ApiKeyCreateSerializer(StrictSerializer):
    """POST /client/{client_id}/api_keys."""

    read_only_names = frozenset({"api_key", "prefix", "created", "last_used", "revoked"})

    name = serializers.CharField(max_length=255, help_text="What the key is for, e.g. the job that uses it.")
    scope = ScopeField(
        required=False, help_text="Space-delimited; each allowed for the client. Absent: the client's default scopes."
    )
    expires_in = DurationField(
        required=False, help_text="Lifetime; default API_KEY_DEFAULT_LIFETIME (90d), at most API_KEY_MAX_LIFETIME."
    )
    expires = serializers.DateTimeField(required=False, help_text="ISO 8601 expiry, instead of expires_in.")


class EmptySerializer(StrictSerializer):
    """A body that must be absent or ``{}``."""


# --- clients -----------------------------------------------------------------------------


def _setting_field(setting: metadata.Setting, *, writable: bool) -> serializers.Field:
    """The API field of a client setting (``clients.metadata``): read by the input
    serializers when ``writable``, rendered by the output ones otherwise."""
    model_field = Client._meta.get_field(setting.name)
    help_text = setting.api_help or str(model_field.help_text)
    options: dict[str, Any] = {"help_text": help_text} if help_text else {}
    if writable:
        options["required"] = False
    elif setting.api_name != setting.name:
        options["source"] = setting.name
    kind = setting.kind
    if kind is metadata.Kind.TEXT:
        return serializers.CharField(max_length=model_field.max_length, allow_blank=writable, **options)
    if kind is metadata.Kind.BOOLEAN:
        return serializers.BooleanField(**options)
    if kind is metadata.Kind.SCOPES:
        return ScopeField(**options)
    if kind in (metadata.Kind.LIST, metadata.Kind.CIDRS):
        validators = list(model_field.validators) if writable else []
        return serializers.ListField(child=serializers.CharField(), validators=validators, **options)
    if kind is metadata.Kind.CHOICES:
        return serializers.ListField(child=serializers.ChoiceField(choices=setting.choices), **options)
    if kind is metadata.Kind.DURATION:
        if writable:
            return TokenLifetimeField(allow_null=True, **options)
        return serializers.IntegerField(allow_null=True, **options)
    if kind is metadata.Kind.CHOICE:
        return OptionalChoiceField(choices=model_field.choices, **options)
    if kind is metadata.Kind.JWKS:
        return JwksField(**options)
    if kind is metadata.Kind.IDENTITIES:
        return IdentitiesField(**options)
    raise AssertionError(f"no API field for {kind}")


def _setting_fields(*, writable: bool) -> dict[str, serializers.Field]:
    return {setting.api_name: _setting_field(setting, writable=writable) for setting in metadata.SETTINGS}


class ClientSerializer(serializers.Serializer):
    """A client as listed (RFC 7591 §2 names): ``client_id``, every setting, tenants, roles."""

    client_id = serializers.CharField()
    seacatauth_credentials = serializers.SerializerMethodField(
        help_text='SeaCat Auth\'s name: true exactly when grant_types holds "client_credentials".'
    )
    owner = serializers.SerializerMethodField(help_text="Username of the owning user; null: none.")
    tenants = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = super().get_fields()
        return {"client_id": declared.pop("client_id"), **_setting_fields(writable=False), **declared}

    def get_seacatauth_credentials(self, client: Client) -> bool:
        return GrantType.CLIENT_CREDENTIALS in client.grant_types

    def get_owner(self, client: Client) -> str | None:
        return client.user.get_username() if client.user is not None else None

    def get_tenants(self, client: Client) -> list[str]:
        """Tenant slugs, sorted."""
        return sorted(tenant.slug for tenant in client.tenants.all())

    def get_roles(self, client: Client) -> list[str]:
        """Roles as they appear in tokens: name (global) or tenant/name; sorted."""
        return sorted(role.claim_value for role in client.roles.all())


class ClientDetailSerializer(ClientSerializer):
    secrets = SecretSerializer(many=True, help_text="Every secret of the client, newest first.")


class ClientCreatedSerializer(ClientDetailSerializer):
    """The created client with its first secret, shown this once (RFC 7591 §3.2.1)."""

    client_secret = serializers.SerializerMethodField(help_text="Shown only in this response.")
    client_secret_expires_at = serializers.SerializerMethodField(help_text="RFC 7591: 0, it never expires.")

    def get_client_secret(self, client: Client) -> str:
        issued: IssuedSecret = self.context["issued"]
        return issued.secret

    def get_client_secret_expires_at(self, client: Client) -> int:
        return _expires_at(self.context["issued"])


_CLIENT_READ_ONLY = frozenset({"created", "updated", "secrets", "client_secret", "client_secret_expires_at"})


class ClientInputSerializer(StrictSerializer):
    """POST /client: every field is optional (RFC 7591 §2)."""

    read_only_names = _CLIENT_READ_ONLY

    client_id = serializers.CharField(
        required=False, max_length=255, trim_whitespace=False, validators=[validate_client_id],
        help_text="Printable ASCII without spaces; generated when absent.",
    )
    tenants = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Tenant slugs; missing tenants are created."
    )
    roles = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text='"name" (global) or "tenant/name"; missing roles are created.',
    )
    seacatauth_credentials = serializers.BooleanField(
        required=False,
        help_text='SeaCat Auth compatibility: true adds "client_credentials" to grant_types, false removes it; '
        "sent with grant_types, the two must agree.",
    )
    owner = serializers.CharField(
        required=False, allow_null=True, help_text="Username of an existing user who owns the client; null: none."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = super().get_fields()
        return {"client_id": declared.pop("client_id"), **_setting_fields(writable=True), **declared}

    def validate_owner(self, value: str | None) -> Any:
        if value is None:
            return None
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: value}).first()
        if user is None:
            raise serializers.ValidationError(f"No user {value!r}.")
        return user

    def current_grant_types(self) -> list[str]:
        """The grant types the client has before this request: none yet for a new one."""
        return [GrantType.CLIENT_CREDENTIALS]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """DESIGN §9.6: ``seacatauth_credentials`` is ``client_credentials`` in ``grant_types``."""
        if "seacatauth_credentials" not in attrs:
            return attrs
        wanted = attrs.pop("seacatauth_credentials")
        if "grant_types" in attrs:
            if (GrantType.CLIENT_CREDENTIALS in attrs["grant_types"]) != wanted:
                raise serializers.ValidationError(
                    {"seacatauth_credentials": ['Must agree with grant_types (true exactly when it holds '
                                                '"client_credentials").']}
                )
            return attrs
        others = [g for g in self.current_grant_types() if g != GrantType.CLIENT_CREDENTIALS]
        attrs["grant_types"] = [GrantType.CLIENT_CREDENTIALS, *others] if wanted else others
        return attrs

    def model_fields(self) -> dict[str, Any]:
        """The validated client settings under their model names (no id, tenants or roles)."""
        return {
            metadata.BY_API_NAME[k].name: v for k, v in self.validated_data.items() if k in metadata.BY_API_NAME
        }


class ClientUpdateSerializer(ClientInputSerializer):
    """PUT or PATCH /client/{client_id}: the fields sent change, the others keep their values.

    client_id may be sent (e.g. in a document read back) but must match the path.
    """

    client_id = serializers.CharField(
        required=False, trim_whitespace=False, help_text="Optional; must equal the client ID in the path."
    )

    def current_grant_types(self) -> list[str]:
        return list(self.context["client"].grant_types)

    def validate_client_id(self, value: str) -> str:
        if value != self.context["client"].client_id:
            raise serializers.ValidationError("The client_id in the body must match the one in the path.")
        return value


class ClientFilterSerializer(serializers.Serializer):
    """Query parameters of GET /client."""

    tenant = serializers.CharField(required=False, help_text="Only clients assigned this tenant (slug).")
    enabled = serializers.BooleanField(required=False, help_text="Only enabled (true) or disabled (false) clients.")


# --- tenants and roles -------------------------------------------------------------------


class TenantSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    created = serializers.DateTimeField()


class TenantInputSerializer(StrictSerializer):
    """POST /tenant (slug required); PUT or PATCH /tenant/{slug} (a new slug renames the tenant)."""

    read_only_names = frozenset({"created"})

    slug = serializers.SlugField(max_length=100, help_text="Letters, digits, - and _; used in scope tenant:<slug>.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


class RoleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tenant = serializers.CharField(source="tenant.slug", allow_null=True, help_text="Tenant slug; null: a global role.")
    role = serializers.CharField(
        source="claim_value", help_text='As in tokens and client "roles": name or tenant/name.'
    )
    created = serializers.DateTimeField()


class RoleInputSerializer(StrictSerializer):
    """POST /role (name required); PUT or PATCH /role/{role_id}."""

    read_only_names = frozenset({"id", "role", "created"})

    name = serializers.CharField(max_length=100, help_text="No spaces or slashes.")
    tenant = serializers.SlugRelatedField(
        slug_field="slug", queryset=Tenant.objects.all(), required=False, allow_null=True,
        error_messages={"does_not_exist": "No tenant {value!r}."},
        help_text="Slug of the tenant the role belongs to; null or absent: a global role.",
    )


class RoleFilterSerializer(serializers.Serializer):
    tenant = serializers.CharField(required=False, help_text="Only roles of this tenant (slug).")


# --- trusted issuers (workload identity federation) --------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_TTL_SECONDS},
            {"type": "string", "pattern": r"^\s*\d{1,9}\s*[smhd]?\s*$", "example": "24h"},
        ],
        "description": "The longest a token may live (exp - iat), in seconds; also accepts 90s, 10m, 1h, 1d. "
        "Default 24h. Always returned in seconds.",
    }
)
class IssuerLifetimeField(TokenLifetimeField):
    """``max_token_lifetime``: seconds or a duration, never null."""


class TrustedIssuerSerializer(serializers.Serializer):
    """A trusted issuer: a platform whose JWTs authenticate workloads as clients."""

    name = serializers.CharField(help_text="The key clients' federated_identities name it by.")
    issuer = serializers.CharField(help_text="The exact iss of its tokens, or spiffe://<trust domain>.")
    jwks_uri = serializers.CharField(
        help_text='Where its keys are; "": the jwks_uri of <issuer>/.well-known/openid-configuration.'
    )
    jwks = JwksField(help_text="Its keys as a static JWK Set (RFC 7517 §5); null: fetched from jwks_uri.")
    audiences = serializers.ListField(
        child=serializers.CharField(), help_text="The aud values accepted; []: this server's issuer identifier."
    )
    max_token_lifetime = serializers.IntegerField(help_text="Seconds a token may live (exp - iat) at most.")
    enabled = serializers.BooleanField(help_text="A disabled issuer's tokens authenticate nobody.")
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class TrustedIssuerInputSerializer(StrictSerializer):
    """POST /trusted_issuer: name and issuer required."""

    read_only_names = frozenset({"created", "updated"})

    name = serializers.CharField(max_length=100, help_text="Letters, digits, - and _, e.g. prod-cluster.")
    issuer = serializers.CharField(
        max_length=2000,
        help_text="The exact iss of its tokens: https (plain http only for a loopback host), "
        "or spiffe://<trust domain> for SPIFFE JWT-SVIDs.",
    )
    jwks_uri = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text='An https URL of its JWK Set; "" or absent: found by OpenID discovery of the issuer.',
    )
    jwks = JwksField(
        required=False,
        help_text="Its public keys as a JWK Set, for an issuer whose discovery is not reachable "
        "(or a SPIFFE trust bundle); not with jwks_uri. null: none.",
    )
    audiences = serializers.ListField(
        child=serializers.CharField(), required=False, max_length=100,
        help_text="The aud values accepted; [] or absent: this server's issuer identifier.",
    )
    max_token_lifetime = IssuerLifetimeField(required=False)
    enabled = serializers.BooleanField(required=False)


class TrustedIssuerUpdateSerializer(TrustedIssuerInputSerializer):
    """PUT or PATCH /trusted_issuer/{name}: every field optional; a new name renames it."""

    name = serializers.CharField(
        required=False, max_length=100, help_text="A new name: clients' federated_identities follow it."
    )
    issuer = serializers.CharField(required=False, max_length=2000, help_text="The exact iss of its tokens.")



# --- pages -------------------------------------------------------------------------------


def _page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The shape of one page of a list (``?limit=&offset=``, DRF's LimitOffsetPagination)."""
    fields = {
        "count": serializers.IntegerField(help_text="Items in the whole list."),
        "next": serializers.URLField(allow_null=True, help_text="The next page; null on the last."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page; null on the first."),
        "results": item(many=True),
    }
    return type(name, (serializers.Serializer,), fields)


ClientPageSerializer = _page_of(ClientSerializer, "ClientPageSerializer")
TenantPageSerializer = _page_of(TenantSerializer, "TenantPageSerializer")
RolePageSerializer = _page_of(RoleSerializer, "RolePageSerializer")
TrustedIssuerPageSerializer = _page_of(TrustedIssuerSerializer, "TrustedIssuerPageSerializer")
