"""The client registry: clients, their secrets, tenants and roles."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from oauth2_provider.models import AbstractApplication

from clients.certificates import SUBJECT_FIELDS, validate_san_email, validate_san_ip, validate_subject_dn
from clients.jwks import SIGNING_ALGORITHMS, url_problem, validate_https_url, validate_issuer_jwks, validate_jwks
from clients.secrets import generate_client_id

# RFC 6749 §2.2 leaves the client identifier's syntax to us; the client_id
# production of Appendix A allows VSCHAR (%x20-7E).  We drop the space so that an
# identifier survives Basic authentication, shells and logs unquoted.
CLIENT_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
# RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ).
AUDIENCE_PATTERN = re.compile(r"[\x21-\x7e]{1,2000}")
SCOPE_TOKEN_PATTERN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def validate_client_id(value: str) -> None:
    if not CLIENT_ID_PATTERN.fullmatch(value):
        raise ValidationError(
            "A client ID is 1 to 255 printable ASCII characters without spaces.",
            code="invalid_client_id",
        )


def validate_scope_list(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(s, str) and SCOPE_TOKEN_PATTERN.fullmatch(s) for s in value
    ):
        raise ValidationError(
            "Scopes are printable ASCII without spaces, quotes or backslashes.",
            code="invalid_scope",
        )


def validate_cidr_list(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError("Expected a list of CIDRs.", code="invalid_cidr")
    for cidr in value:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError):
            raise ValidationError(f"{cidr!r} is not an IP address or CIDR.", code="invalid_cidr") from None


def validate_grant_types(value: object) -> None:
    if not isinstance(value, list) or not all(g in GrantType.values for g in value):
        raise ValidationError(
            f"Grant types are a list of: {', '.join(GrantType.values)}.", code="invalid_grant_type"
        )


def validate_audience_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(a, str) and AUDIENCE_PATTERN.fullmatch(a) for a in value):
        raise ValidationError(
            "Audiences are printable ASCII without spaces (e.g. https://api.example.com).", code="invalid_audience"
        )


class GrantType(models.TextChoices):
    CLIENT_CREDENTIALS = "client_credentials", "Client credentials"


class TokenEndpointAuthMethod(models.TextChoices):
    """RFC 7591 §2 names; an empty value lets the client send its secret either way."""

    ANY = "", "A secret, either way"
    CLIENT_SECRET_BASIC = "client_secret_basic", "A secret in HTTP Basic (client_secret_basic)"
    CLIENT_SECRET_POST = "client_secret_post", "A secret in the form body (client_secret_post)"
    PRIVATE_KEY_JWT = "private_key_jwt", "A JWT signed with its private key (private_key_jwt)"
    TLS_CLIENT_AUTH = "tls_client_auth", "A TLS client certificate from a trusted CA (tls_client_auth)"
    SELF_SIGNED_TLS_CLIENT_AUTH = (
        "self_signed_tls_client_auth", "A registered self-signed TLS client certificate (self_signed_tls_client_auth)"
    )


# Methods that present a client secret.
_M = TokenEndpointAuthMethod
SECRET_METHODS = frozenset({_M.ANY, _M.CLIENT_SECRET_BASIC, _M.CLIENT_SECRET_POST})
# RFC 8705 §2: methods that present a TLS client certificate.
CERTIFICATE_METHODS = frozenset({_M.TLS_CLIENT_AUTH, _M.SELF_SIGNED_TLS_CLIENT_AUTH})



class SigningAlgorithm(models.TextChoices):
    """The JWS algorithms ``clients.jwks.SIGNING_ALGORITHMS`` names; empty: any of them."""

    ANY = "", "Any supported"
    ES256 = "ES256"
    ES384 = "ES384"
    PS256 = "PS256"
    RS256 = "RS256"
    EDDSA = "EdDSA"


assert tuple(SigningAlgorithm.values[1:]) == SIGNING_ALGORITHMS  # noqa: S101 (one list, two spellings)


SPIFFE_SCHEME = "spiffe://"
# A federated identity's fields (DESIGN §9.2).
_IDENTITY_KEYS = frozenset({"trusted_issuer", "subject", "claims"})
_ISSUER_NAME = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def validate_issuer_identifier(value: str) -> None:
    """A trusted issuer's ``iss``: https (plain http only for loopback), or ``spiffe://<trust domain>``."""
    if value.startswith(SPIFFE_SCHEME):
        domain = value[len(SPIFFE_SCHEME):]
        if not re.fullmatch(r"[a-z0-9._-]{1,255}", domain):
            raise ValidationError("A SPIFFE issuer is spiffe://<trust domain> (lowercase letters, digits, . - _).",
                                  code="invalid_issuer")
        return
    problem = url_problem(value)
    if problem or "?" in value:
        raise ValidationError(f"The issuer {problem or 'must have no query'}.", code="invalid_issuer")


def validate_federated_identities(value: object) -> None:
    """A list of ``{"trusted_issuer": name, "subject": pattern, "claims": {name: value}}``."""
    if not isinstance(value, list):
        raise ValidationError("Expected a list of federated identities.", code="invalid_identities")
    if len(value) > 100:
        raise ValidationError("At most 100 federated identities.", code="invalid_identities")
    for index, identity in enumerate(value, start=1):
        where = f"Identity {index}"
        if not isinstance(identity, dict) or not {"trusted_issuer", "subject"} <= set(identity) \
                or set(identity) - _IDENTITY_KEYS:
            raise ValidationError(f'{where}: an object with "trusted_issuer", "subject" and optional "claims".',
                                  code="invalid_identities")
        name, subject, claims = identity["trusted_issuer"], identity["subject"], identity.get("claims", {})
        if not isinstance(name, str) or not _ISSUER_NAME.fullmatch(name):
            raise ValidationError(f"{where}: trusted_issuer must be an issuer's name.", code="invalid_identities")
        if not isinstance(subject, str) or not subject or len(subject) > 1000 or "**" in subject:
            raise ValidationError(f"{where}: subject must be a subject or a pattern with *.",
                                  code="invalid_identities")
        if not isinstance(claims, dict) or len(claims) > 20 or not all(
            isinstance(k, str) and k and isinstance(v, str | int | bool) for k, v in claims.items()
        ):
            raise ValidationError(f"{where}: claims must map claim names to strings, numbers or booleans.",
                                  code="invalid_identities")


class Tenant(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Role(models.Model):
    name = models.CharField(
        max_length=100,
        validators=[
            RegexValidator(r"^[^\s/\x00-\x1f\x7f]+\Z", "A role name has no spaces, slashes or control characters.")
        ],
    )
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="roles",
        help_text="Empty for a global role.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="role_unique_per_tenant"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(tenant__isnull=True), name="role_unique_global"
            ),
        ]

    def __str__(self) -> str:
        return self.claim_value

    @property
    def claim_value(self) -> str:
        """How the role appears in the `roles` claim: ``name`` or ``tenant/name``."""
        return f"{self.tenant.slug}/{self.name}" if self.tenant is not None else self.name


class Client(AbstractApplication):
    """A registered client; replaces django-oauth-toolkit's Application model.

    DOT's own secret column is unused (always empty): secrets live in
    ``ClientSecret`` rows so that several can be live at once.
    """

    client_id = models.CharField(
        max_length=255, unique=True, default=generate_client_id,
        validators=[validate_client_id], verbose_name="client ID",
        help_text="Printable ASCII without spaces, e.g. my-backend-service.",
    )
    client_secret = models.CharField(max_length=255, blank=True, default="", editable=False)
    hash_client_secret = models.BooleanField(default=False, editable=False)
    client_type = models.CharField(
        max_length=32, default=AbstractApplication.CLIENT_CONFIDENTIAL, editable=False
    )
    authorization_grant_type = models.CharField(
        max_length=44, default=AbstractApplication.GRANT_CLIENT_CREDENTIALS, editable=False
    )

    enabled = models.BooleanField(default=True, help_text="A disabled client gets no tokens.")
    grant_types = models.JSONField(
        default=list, blank=True, validators=[validate_grant_types],
        help_text='Grants this client may use; only "client_credentials" is served.',
    )
    allowed_scopes = models.JSONField(default=list, blank=True, validators=[validate_scope_list])
    default_scopes = models.JSONField(
        default=list, blank=True, validators=[validate_scope_list],
        help_text="Granted when a request names no scope. Empty: all allowed scopes.",
    )
    token_endpoint_auth_method = models.CharField(
        max_length=32, choices=TokenEndpointAuthMethod.choices, default="", blank=True
    )
    jwks = models.JSONField(
        null=True, blank=True, default=None, validators=[validate_jwks],
        help_text="Public keys (a JWK Set, RFC 7517 §5) the client signs its assertions with.",
    )
    jwks_uri = models.CharField(
        max_length=2000, blank=True, default="", validators=[validate_https_url],
        help_text="Where the client publishes its JWK Set (https; http only for loopback).",
    )
    token_endpoint_auth_signing_alg = models.CharField(
        max_length=16, choices=SigningAlgorithm.choices, default="", blank=True,
        help_text="The one JWS algorithm its assertions may use; empty: any supported one.",
    )
    dpop_bound_access_tokens = models.BooleanField(
        default=False, help_text="RFC 9449 §5.2: token requests must carry a DPoP proof."
    )
    tls_client_certificate_bound_access_tokens = models.BooleanField(
        default=False, help_text="RFC 8705 §3: tokens carry the thumbprint of the TLS client certificate."
    )
    tls_client_auth_subject_dn = models.CharField(
        max_length=1000, blank=True, default="", validators=[validate_subject_dn],
        help_text="RFC 8705 §2.1.2: the certificate's subject DN (RFC 4514).",
    )
    tls_client_auth_san_dns = models.CharField(
        max_length=253, blank=True, default="", help_text="RFC 8705 §2.1.2: a dNSName SAN of the certificate."
    )
    tls_client_auth_san_uri = models.CharField(
        max_length=2000, blank=True, default="", help_text="RFC 8705 §2.1.2: a URI SAN of the certificate."
    )
    tls_client_auth_san_ip = models.CharField(
        max_length=45, blank=True, default="", validators=[validate_san_ip],
        help_text="RFC 8705 §2.1.2: an iPAddress SAN of the certificate.",
    )
    tls_client_auth_san_email = models.CharField(
        max_length=320, blank=True, default="", validators=[validate_san_email],
        help_text="RFC 8705 §2.1.2: an rfc822Name SAN of the certificate.",
    )
    access_token_ttl = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds. Empty: the server default."
    )
    audiences = models.JSONField(
        default=list, blank=True, validators=[validate_audience_list],
        help_text="Allowed RFC 8707 resources; the first is the default audience.",
    )
    allowed_ips = models.JSONField(
        default=list, blank=True, validators=[validate_cidr_list],
        help_text="CIDRs the client may call from. Empty: any address.",
    )
    federated_identities = models.JSONField(
        default=list, blank=True, validators=[validate_federated_identities],
        help_text="Workloads (a trusted issuer's subjects) that may authenticate as this client with their own JWT.",
    )
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="clients")
    roles = models.ManyToManyField(Role, blank=True, related_name="clients")

    class Meta(AbstractApplication.Meta):
        ordering = ["client_id"]

    def __str__(self) -> str:
        return self.client_id

    def clean(self) -> None:
        """RFC 7591 §2: ``jwks`` and ``jwks_uri`` never both; ``private_key_jwt`` needs one."""
        super().clean()
        if self.jwks and self.jwks_uri:
            raise ValidationError({"jwks_uri": "Register jwks or jwks_uri, not both."})
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod.PRIVATE_KEY_JWT and not (
            self.jwks or self.jwks_uri or self.federated_identities
        ) and self._had_keys_or_another_method():
            raise ValidationError({"jwks": "A private_key_jwt client needs jwks, jwks_uri or federated identities."})
        self._clean_certificate_method()
        names = {identity["trusted_issuer"] for identity in self.federated_identities or ()
                 if isinstance(identity, dict) and isinstance(identity.get("trusted_issuer"), str)}
        unknown = names - set(TrustedIssuer.objects.filter(name__in=names).values_list("name", flat=True))
        if unknown and self.pk is not None:
            # An identity saved before its issuer was deleted matches nothing and may stay (the
            # issuer may come back); only a newly named issuer must exist, so a typo is caught.
            stored = Client.objects.filter(pk=self.pk).values_list("federated_identities", flat=True).first() or []
            unknown -= {identity.get("trusted_issuer") for identity in stored if isinstance(identity, dict)}
        if unknown:
            raise ValidationError(
                {"federated_identities": f"No trusted issuer {', '.join(sorted(map(repr, unknown)))}."}
            )

    def _clean_certificate_method(self) -> None:
        """RFC 8705 §2.1.2: a ``tls_client_auth`` client registers exactly one subject value; §2.2:
        a ``self_signed_tls_client_auth`` one registers its certificates (``x5c`` in ``jwks``)."""
        subjects = [name for name in SUBJECT_FIELDS if getattr(self, name)]
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod.TLS_CLIENT_AUTH and len(subjects) != 1:
            raise ValidationError({
                subjects[1] if subjects else "tls_client_auth_subject_dn":
                "A tls_client_auth client registers exactly one of " + ", ".join(SUBJECT_FIELDS) + ".",
            })
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod.SELF_SIGNED_TLS_CLIENT_AUTH:
            keys = self.jwks.get("keys") if isinstance(self.jwks, dict) else None
            if not (self.jwks_uri or any(isinstance(key, dict) and key.get("x5c") for key in keys or ())):
                raise ValidationError({
                    "jwks": "A self_signed_tls_client_auth client registers its certificates: "
                    "jwks with x5c, or jwks_uri.",
                })

    def _had_keys_or_another_method(self) -> bool:
        """Whether this save would leave a key client with nothing to prove itself by: a new one,
        one switching to private_key_jwt, or one losing its keys.  (One that lost its identities
        when their issuer was deleted may still be edited, e.g. disabled.)"""
        if self.pk is None:
            return True
        stored = Client.objects.filter(pk=self.pk).values(
            "token_endpoint_auth_method", "jwks", "jwks_uri", "federated_identities"
        ).first()
        return stored is None or stored["token_endpoint_auth_method"] != self.token_endpoint_auth_method or bool(
            stored["jwks"] or stored["jwks_uri"] or stored["federated_identities"]
        )

    @property
    def uses_secret(self) -> bool:
        """Whether the client authenticates with a secret (so creating it makes one)."""
        return self.token_endpoint_auth_method in SECRET_METHODS

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    @property
    def owner(self):  # type: ignore[no-untyped-def]
        return self.user


class TrustedIssuer(models.Model):
    """A platform whose JWTs prove workloads (DESIGN §9.2): a Kubernetes cluster, a CI system,
    a SPIFFE trust domain.  Clients name it in their ``federated_identities``."""

    name = models.CharField(
        max_length=100, unique=True, validators=[RegexValidator(r"^[-a-zA-Z0-9_]+\Z", "Letters, digits, - and _.")],
        help_text="How clients' federated identities name this issuer, e.g. prod-cluster.",
    )
    issuer = models.CharField(
        max_length=2000, unique=True, validators=[validate_issuer_identifier],
        help_text="The exact iss of its tokens (https; http only for loopback), or spiffe://<trust domain>.",
    )
    jwks_uri = models.CharField(
        max_length=2000, blank=True, default="", validators=[validate_https_url],
        help_text="Where its keys are. Empty: jwks_uri of <issuer>/.well-known/openid-configuration.",
    )
    jwks = models.JSONField(
        null=True, blank=True, default=None, validators=[validate_issuer_jwks],
        help_text="Its keys as a static JWK Set, for an issuer whose discovery is not reachable.",
    )
    audiences = models.JSONField(
        default=list, blank=True, validators=[validate_audience_list],
        help_text="The aud values accepted. Empty: this server's ISSUER.",
    )
    max_token_lifetime = models.PositiveIntegerField(
        default=24 * 3600, help_text="Seconds a token may live (exp - iat) at most."
    )
    enabled = models.BooleanField(default=True, help_text="A disabled issuer's tokens prove nothing.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.jwks and self.jwks_uri:
            raise ValidationError({"jwks_uri": "Give jwks or jwks_uri, not both."})
        if self.issuer.startswith(SPIFFE_SCHEME) and not (self.jwks or self.jwks_uri):
            raise ValidationError(
                {"jwks": "A SPIFFE trust domain has no discovery: give its bundle as jwks or jwks_uri."}
            )


class ClientSecretQuerySet(models.QuerySet["ClientSecret"]):
    def live(self, at: datetime) -> ClientSecretQuerySet:
        return self.filter(revoked__isnull=True).filter(Q(expires__isnull=True) | Q(expires__gt=at))


class ClientSecret(models.Model):
    """One secret of a client, kept as its visible prefix and a keyed hash."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="secrets")
    prefix = models.CharField(max_length=32, help_text="The secret's first characters.")
    hash = models.CharField(max_length=64, editable=False)
    hash_key_id = models.CharField(
        max_length=16, editable=False, help_text="Which SECRET_HASH_KEY made the hash."
    )
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)

    objects = ClientSecretQuerySet.as_manager()

    class Meta:
        ordering = ["client", "-created"]
        indexes = [models.Index(fields=["client", "prefix"])]

    def __str__(self) -> str:
        return f"{self.prefix}…"

    def is_live(self, at: datetime) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > at)


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def live(self, at: datetime) -> ApiKeyQuerySet:
        return self.filter(revoked__isnull=True, expires__gt=at)

    def listed(self, at: datetime) -> ApiKeyQuerySet:
        """Keys an operator still sees: every key until it would have expired (revoked ones marked)."""
        return self.filter(expires__gt=at)


class ApiKey(models.Model):
    """A long-lived bearer credential of a client (DESIGN §9.5), kept as its prefix and a keyed hash."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=255, help_text="What the key is for, e.g. the job that uses it.")
    prefix = models.CharField(max_length=32, db_index=True, help_text="The key's first characters.")
    hash = models.CharField(max_length=64, editable=False)
    hash_key_id = models.CharField(
        max_length=16, editable=False, help_text="Which SECRET_HASH_KEY made the hash."
    )
    scopes = models.JSONField(default=list, blank=True, validators=[validate_scope_list])
    created = models.DateTimeField()
    expires = models.DateTimeField()
    revoked = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["client", "-created", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}…"

    def is_live(self, at: datetime) -> bool:
        return self.revoked is None and self.expires > at


class ClientUsage(models.Model):
    """One client's tokens issued and failed authentications in one hour (``clients.usage``)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="usage")
    hour = models.DateTimeField(help_text="The hour's start (UTC).")
    tokens_issued = models.PositiveIntegerField(default=0)
    failed_authentications = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["client", "hour"]
        constraints = [models.UniqueConstraint(fields=["client", "hour"], name="usage_one_row_per_client_hour")]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.client_id} {self.hour:%Y-%m-%d %H}:00"


class AuditEvent(models.Model):
    """One change to the registry or the signing keys: who, what, when (never a secret)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=255, help_text="user:NAME, client:ID, cli, or system.")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"


class RegistryState(models.Model):
    """One row of counters that database triggers increment in every writer's
    transaction (``clients.versions``): ``version`` for clients, secrets, tenants and
    roles, ``keys_version`` for signing keys.

    Each process caches what token requests need and compares these counters once
    per request, so a change made anywhere is seen everywhere on the next request.
    """

    version = models.BigIntegerField(default=0)
    keys_version = models.BigIntegerField(default=0)
    # Seconds since the epoch until which a failed-authentication lockout may hold, anywhere
    # (tokens.shared_state's database store raises it before it sets a lockout): read with the
    # versions, it spares the token path its lockout query while none can hold.  A database default:
    # the version triggers create the row without it.
    lockouts_until = models.FloatField(db_default=0.0)

    def __str__(self) -> str:
        return f"registry version {self.version}"
