"""Client metadata: each setting of a client declared once.

RFC 7591 §2 calls a client's registered properties its metadata.  Each one is
declared here with everything the rest of the server needs to know about it: the
model field, the management API's name (RFC 7591's where it has one), how it is
typed (``Kind``), its admin label, help and section, its ``createclient`` flag, and
whether the token path reads it.  The services, the API serializers, the admin form,
``createclient``, the audit trail and the registry snapshot are all derived from
``SETTINGS``, as DRF's ``ModelSerializer`` derives from a model; so a new setting is
its model field, its migration and one entry below.

Validation lives on the model fields (``full_clean``); each face adds only the
parsing its input needs (a scope string, a duration, a line per item).  Tenants and
roles are relations with services of their own, so they are not settings here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clients.models import CERTIFICATE_METHODS, GrantType


class Kind(enum.Enum):
    """How a setting is typed, read and shown; each face maps every kind to its field."""

    TEXT = "text"  # one line of text
    BOOLEAN = "boolean"
    SCOPES = "scopes"  # a list of RFC 6749 §3.3 scope-tokens; space-delimited in the API
    LIST = "list"  # a list of strings (audiences), one per line in the admin
    CIDRS = "cidrs"  # a list of IP networks
    DURATION = "duration"  # seconds, or null for the server default; typed as 90s, 10m, 1h, 1d
    CHOICE = "choice"  # one of the model field's choices; "" (unset) shown as null in the API
    CHOICES = "choices"  # several of ``choices``
    JWKS = "jwks"  # a JWK Set (RFC 7517 §5) of public keys, or null; a PEM public key in the admin and CLI
    IDENTITIES = "identities"  # federated identities: a JSON list of {trusted_issuer, subject, claims}


class Section(enum.Enum):
    """Where the admin's client page shows a setting."""

    CLIENT = None
    TOKENS = "Tokens"
    AUTHENTICATION = "Authentication"


@dataclass(frozen=True)
class Setting:
    name: str  # the model field
    api_name: str
    kind: Kind
    label: str  # admin
    help: str  # admin (HTML allowed)
    api_help: str = ""  # the OpenAPI description; empty: the model field's help text
    section: Section = Section.TOKENS
    cli: str | None = None  # createclient's flag; repeatable for a list
    cli_help: str = ""
    token_path: bool = True  # held in the registry snapshot the token endpoint reads
    choices: tuple[tuple[str, str], ...] = ()  # for CHOICES (CHOICE takes the model field's)
    # The value a new client gets when none is given (a callable: of the other values given);
    # None: the model default.
    create_default: Any = None

    @property
    def is_list(self) -> bool:
        return self.kind in (Kind.SCOPES, Kind.LIST, Kind.CIDRS, Kind.CHOICES)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "name", "client_name", Kind.TEXT, label="Name", section=Section.CLIENT, token_path=False,
        help="A human-readable name, e.g. the service and team that use this client.",
        api_help="A human-readable name.",
    ),
    Setting(
        "enabled", "enabled", Kind.BOOLEAN, label="Enabled", section=Section.CLIENT,
        help="Untick to refuse this client new tokens at once. Tokens already issued stay valid until they expire.",
        api_help="A disabled client gets no tokens.",
    ),
    Setting(
        "grant_types", "grant_types", Kind.CHOICES, label="Allowed grants", choices=tuple(GrantType.choices),
        create_default=[GrantType.CLIENT_CREDENTIALS],
        help="Untick to stop this client getting tokens without disabling it entirely.",
        api_help='Only "client_credentials" is served; a new client has it.',
    ),
    Setting(
        "allowed_scopes", "scope", Kind.SCOPES, label="Allowed scopes", cli="--scope",
        cli_help="An allowed scope (repeatable).",
        help="The scopes this client may ask for, separated by spaces or new lines, e.g. "
        "<code>orders:read orders:write</code>. A request for any other scope is refused.",
        api_help="The scopes the client may ask for.",
    ),
    Setting(
        "default_scopes", "default_scope", Kind.SCOPES, label="Default scopes", cli="--default-scope",
        cli_help="A scope granted when a request names none (repeatable; default: all allowed).",
        help="Granted when a token request names no scope. Each must be an allowed scope. Empty: all allowed scopes.",
        api_help="Granted when a request names none; empty: all of scope.",
    ),
    Setting(
        "audiences", "audiences", Kind.LIST, label="Audiences", cli="--audience",
        cli_help="An allowed audience / RFC 8707 resource (repeatable).",
        help="The APIs (RFC 8707 resource URIs) this client's tokens may be meant for, one per line, e.g. "
        "<code>https://api.example.com/</code>. The first is used when a request names none. "
        "Empty: the server's default audience.",
        api_help="Allowed RFC 8707 resources; the first is the default audience.",
    ),
    Setting(
        "access_token_ttl", "access_token_ttl", Kind.DURATION, label="Token lifetime", cli="--ttl",
        cli_help="Access token lifetime: 300, 90s, 10m, 1h (default: server's).",
        help="How long this client's access tokens stay valid: seconds (<code>300</code>) or "
        "<code>90s</code>, <code>10m</code>, <code>1h</code>, <code>1d</code>. Empty: the server default.",
    ),
    Setting(
        "dpop_bound_access_tokens", "dpop_bound_access_tokens", Kind.BOOLEAN, label="DPoP-bound tokens only",
        cli="--dpop-bound", cli_help="Refuse this client tokens unless its request carries a DPoP proof.",
        help="Tick to refuse a token request without a DPoP proof (RFC 9449), so every token of this client "
        "is bound to a key it holds and useless to whoever steals it.",
        api_help="RFC 9449 §5.2: when true, every token request must carry a DPoP proof.",
    ),
    Setting(
        "tls_client_certificate_bound_access_tokens", "tls_client_certificate_bound_access_tokens", Kind.BOOLEAN,
        label="Certificate-bound tokens", cli="--certificate-bound",
        cli_help="Bind this client's tokens to its TLS client certificate (default for the mTLS methods).",
        create_default=lambda values: values.get("token_endpoint_auth_method") in CERTIFICATE_METHODS,
        help="Tick to bind every token of this client to the TLS client certificate it connected with "
        "(RFC 8705 §3): the token then works only over a connection with that certificate. A request "
        "without a certificate is refused. New mTLS clients have it ticked.",
        api_help="RFC 8705 §3: tokens carry cnf.x5t#S256 of the client certificate, and a request without "
        "one is refused. Default: true for tls_client_auth and self_signed_tls_client_auth, else false.",
    ),
    Setting(
        "token_endpoint_auth_method", "token_endpoint_auth_method", Kind.CHOICE, label="How it authenticates",
        section=Section.AUTHENTICATION, cli="--auth-method",
        cli_help="Restrict client authentication to one method (default: a secret, either way).",
        help="A secret in HTTP Basic (an <code>Authorization</code> header) or in the form body "
        "(<code>client_id</code> and <code>client_secret</code> fields), either of those, or a JWT the "
        "client signs with its private key (<code>private_key_jwt</code>, RFC 7523: no secret; register "
        "its public keys below), or a TLS client certificate (RFC 8705: <code>tls_client_auth</code>, "
        "issued by a CA the server trusts and naming the subject registered below; or "
        "<code>self_signed_tls_client_auth</code>, one of the certificates pasted under Public keys).",
        api_help="RFC 7591 token_endpoint_auth_method; null (or \"\" on input): a secret, either way. "
        "Returned as null when unset. private_key_jwt needs jwks or jwks_uri and admits nothing else; "
        "tls_client_auth needs one tls_client_auth_* subject field; self_signed_tls_client_auth needs "
        "jwks with x5c certificates, or jwks_uri.",
    ),
    Setting(
        "jwks", "jwks", Kind.JWKS, label="Public keys", section=Section.AUTHENTICATION, cli="--jwks-file",
        cli_help="A file with the client's public keys: a JWK Set (JSON) or PEM public keys.",
        help="The public keys the client signs its assertions with: paste a JWK Set "
        "(<code>{\"keys\": [...]}</code>) or one or more PEM public keys "
        "(<code>-----BEGIN PUBLIC KEY-----</code>) or certificates (<code>-----BEGIN CERTIFICATE-----</code>, "
        "kept whole for <code>self_signed_tls_client_auth</code>). Never a private key.",
        api_help="RFC 7591 jwks: a JWK Set of public keys (EC P-256/P-384, RSA 2048+, Ed25519); "
        "a key with private members is refused. Not together with jwks_uri.",
    ),
    Setting(
        "jwks_uri", "jwks_uri", Kind.TEXT, label="Public keys URL", section=Section.AUTHENTICATION,
        cli="--jwks-uri", cli_help="Where the client publishes its JWK Set (https).",
        help="Instead of pasting keys: the https URL where the client publishes its JWK Set. It is "
        "fetched (2 s timeout, no redirects, at most 64 KiB) and cached.",
        api_help="RFC 7591 jwks_uri (https; http only for a loopback host). Not together with jwks.",
    ),
    Setting(
        "token_endpoint_auth_signing_alg", "token_endpoint_auth_signing_alg", Kind.CHOICE,
        label="Assertion algorithm", section=Section.AUTHENTICATION, cli="--signing-alg",
        cli_help="The one JWS algorithm the client's assertions may use (default: any supported).",
        help="The one algorithm the client's assertions may be signed with. Empty: any of ES256, ES384, "
        "PS256, RS256, EdDSA that fits the key.",
        api_help="RFC 7591 token_endpoint_auth_signing_alg; null: any supported algorithm fitting the key.",
    ),
    *(
        Setting(
            name, name, Kind.TEXT, label=label, section=Section.AUTHENTICATION, cli=cli, cli_help=cli_help,
            help=f"For <code>tls_client_auth</code>, exactly one of these five: {help_}",
        )
        for name, label, cli, cli_help, help_ in (
            ("tls_client_auth_subject_dn", "Certificate subject DN", "--tls-subject-dn",
             "tls_client_auth: the certificate's subject DN (RFC 4514).",
             "the certificate's subject, as an RFC 4514 DN, e.g. <code>CN=billing,O=Example,C=DE</code> "
             "(compared as a name: case and repeated spaces do not matter)."),
            ("tls_client_auth_san_dns", "Certificate DNS name", "--tls-san-dns",
             "tls_client_auth: a DNS name SAN of the certificate.",
             "a DNS name in the certificate's subject alternative names, e.g. <code>billing.example.com</code>."),
            ("tls_client_auth_san_uri", "Certificate URI", "--tls-san-uri",
             "tls_client_auth: a URI SAN of the certificate (e.g. a SPIFFE ID).",
             "a URI in the certificate's subject alternative names, e.g. "
             "<code>spiffe://example.com/billing</code>."),
            ("tls_client_auth_san_ip", "Certificate IP address", "--tls-san-ip",
             "tls_client_auth: an IP address SAN of the certificate.",
             "an IP address in the certificate's subject alternative names."),
            ("tls_client_auth_san_email", "Certificate email", "--tls-san-email",
             "tls_client_auth: an email SAN of the certificate.",
             "an email address in the certificate's subject alternative names."),
        )
    ),
    Setting(
        "federated_identities", "federated_identities", Kind.IDENTITIES, label="Federated identities",
        section=Section.AUTHENTICATION, cli="--federated-identity",
        cli_help="A workload that may authenticate as this client: ISSUER_NAME=SUBJECT_PATTERN, or a JSON object "
        '{"trusted_issuer": ..., "subject": ..., "claims": {...}} (repeatable).',
        help="Workloads that authenticate with their platform's JWT instead of a secret, as JSON: "
        '<code>[{"trusted_issuer": "prod-cluster", "subject": "system:serviceaccount:payments:*", '
        '"claims": {"/kubernetes.io/namespace": "payments"}}]</code>. <code>*</code> matches one or more '
        "characters other than <code>:</code>; a claim name starting with <code>/</code> is a JSON Pointer.",
        api_help="Workloads that may authenticate as this client with a trusted issuer's JWT (DESIGN §9.2): "
        "[{trusted_issuer, subject (exact, or with * matching one or more characters other than :), "
        "claims (optional; each must equal the token's; a name starting with / is an RFC 6901 pointer)}].",
    ),
    Setting(
        "allowed_ips", "allowed_ips", Kind.CIDRS, label="Allowed IP ranges", section=Section.AUTHENTICATION,
        cli="--allow-ip", cli_help="An allowed source CIDR (repeatable; default: any).",
        help="Addresses this client may request tokens from, one per line: a single address "
        "(<code>192.0.2.7</code>) or a CIDR range (<code>10.0.0.0/8</code>, <code>2001:db8::/32</code>). "
        "Empty: any address.",
        api_help="CIDRs the client may call from; empty: any address.",
    ),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
BY_API_NAME: dict[str, Setting] = {setting.api_name: setting for setting in SETTINGS}
# Model name -> API name, for errors the services raise (they speak model names).
API_NAMES: dict[str, str] = {setting.name: setting.api_name for setting in SETTINGS}


def token_path_settings() -> Iterator[Setting]:
    return (setting for setting in SETTINGS if setting.token_path)


def create_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (model names) with each missing setting's create default filled in."""
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise TypeError(f"not client settings: {', '.join(sorted(unknown))}")
    defaults = {
        s.name: s.create_default(values) if callable(s.create_default) else s.create_default
        for s in SETTINGS if s.create_default is not None
    }
    return {**defaults, **values}
