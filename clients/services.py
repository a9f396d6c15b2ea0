"""Writes to the registry: create clients, add, reset and revoke secrets and API keys.

Plain keyword-only functions shared by the CLI, the admin, the management API and
tests.  Each returns a newly made secret in clear exactly once; it is never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from authserver.durations import parse_duration
from clients import audit, jwks, metadata
from clients import secrets as client_secrets
from clients.models import SCOPE_TOKEN_PATTERN, ApiKey, Client, ClientSecret, Role, Tenant, TrustedIssuer

log = logging.getLogger("authserver.registry")


@dataclass(frozen=True)
class IssuedSecret:
    """A secret just made: ``secret`` is the only copy in clear; show it once."""

    secret: str
    record: ClientSecret


def _lock(client: Client) -> None:
    """Serialise writes to one client's secrets (reset and add) on its row lock."""
    Client.objects.select_for_update().filter(pk=client.pk).first()


@transaction.atomic
def secret_add(
    *, client: Client, expires: datetime | None = None, others_expire: datetime | None = None
) -> IssuedSecret:
    """Give ``client`` one more live secret; its other secrets stay valid (rotation).

    ``others_expire`` sets when the client's other live secrets stop working (only
    ever earlier than they would have), so callers have until then to move over.
    """
    _lock(client)
    shortened: list[str] = []
    if others_expire is not None:
        live = ClientSecret.objects.filter(client=client).live(timezone.now())
        ending = live.filter(Q(expires__isnull=True) | Q(expires__gt=others_expire))
        shortened = list(ending.values_list("prefix", flat=True))
        ending.update(expires=others_expire)
    issued = _new_secret(client, expires=expires)
    changes: dict[str, object] = {"prefix": issued.record.prefix, "expires": _iso(expires)}
    if others_expire is not None:
        changes.update(others_expire=_iso(others_expire), others=shortened)
    audit.record("secret.added", target=client.client_id, changes=changes)
    return issued


def _new_secret(client: Client, *, expires: datetime | None = None) -> IssuedSecret:
    secret = client_secrets.generate_secret()
    key_id, digest = client_secrets.hash_secret(secret)
    record = ClientSecret.objects.create(
        client=client, prefix=client_secrets.secret_prefix(secret),
        hash=digest, hash_key_id=key_id, expires=expires,
    )
    return IssuedSecret(secret=secret, record=record)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@transaction.atomic
def secret_reset(*, client: Client) -> IssuedSecret:
    """Replace every secret of ``client`` with one new one, atomically.

    The client row is locked first, so concurrent resets and additions run one
    after another, and exactly one secret is live when a reset is done.
    """
    _lock(client)
    now = timezone.now()
    live = ClientSecret.objects.filter(client=client).live(now)
    revoked = list(live.values_list("prefix", flat=True))
    live.update(revoked=now)
    issued = _new_secret(client)
    changes = {"prefix": issued.record.prefix, "revoked": revoked}
    audit.record("secret.reset", target=client.client_id, changes=changes)
    return issued


@transaction.atomic
def secret_revoke(*, client: Client, prefix: str) -> ClientSecret:
    """Revoke the client's live secret with this prefix; ``ClientSecret.DoesNotExist`` if none."""
    _lock(client)
    now = timezone.now()
    live = ClientSecret.objects.filter(client=client, prefix=prefix).live(now)
    record = live.first()
    if record is None:
        raise ClientSecret.DoesNotExist(f"no live secret with prefix {prefix!r}")
    # Two live secrets sharing a 12-character prefix are (vanishingly) possible: both go.
    live.update(revoked=now)
    record.refresh_from_db()
    audit.record("secret.revoked", target=client.client_id, changes={"prefix": prefix})
    return record


def resolve_tenants(slugs: Sequence[str]) -> list[Tenant]:
    """The tenants named, created when missing; ``ValidationError`` for an invalid slug."""
    tenants = []
    for slug in slugs:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            tenant = Tenant(slug=slug, name=slug)
            try:
                tenant.full_clean()
            except ValidationError as error:
                message = f"{slug!r} is not a tenant slug: {' '.join(error.messages)}"
                raise ValidationError({"tenants": message}) from None
            tenant.save()
        tenants.append(tenant)
    return tenants


def resolve_roles(names: Sequence[str]) -> list[Role]:
    """The roles named (``name`` global, ``tenant-slug/name`` per tenant), created when missing."""
    roles = []
    for name in names:
        tenant_slug, slash, role_name = name.partition("/")
        if not slash:
            tenant_slug, role_name = "", name
        tenant = resolve_tenants([tenant_slug])[0] if slash else None
        role = Role.objects.filter(tenant=tenant, name=role_name).first()
        if role is None:
            role = Role(tenant=tenant, name=role_name)
            try:
                role.full_clean(validate_constraints=False)
            except ValidationError as error:
                message = f"{name!r} is not a role name: {' '.join(error.messages)}"
                raise ValidationError({"roles": message}) from None
            role.save()
        roles.append(role)
    return roles


@transaction.atomic
def client_create(
    *,
    client_id: str | None = None,
    tenants: Sequence[str] = (),
    roles: Sequence[str] = (),
    owner: AbstractBaseUser | None = None,
    **values: Any,
) -> tuple[Client, IssuedSecret | None]:
    """Create a confidential client; ``values`` are client settings by model name
    (``clients.metadata``: ``name``, ``allowed_scopes``, ...), each missing one taking
    its create default (enabled, allowed the client credentials grant).

    A client that authenticates with a secret gets its first one, returned in clear this
    once; a key-only client (``private_key_jwt``) gets none (DESIGN §9.1).

    Raises ``ValidationError`` (and creates nothing) on any invalid field.
    """
    client = Client(user=owner)
    for name, value in metadata.create_values(values).items():
        setattr(client, name, _unique(value) if isinstance(value, list | tuple) else value)
    if client_id is not None:
        client.client_id = client_id
    client.full_clean()
    client_validate_scopes(client)
    client.save()
    client.tenants.set(resolve_tenants(tenants))
    client.roles.set(resolve_roles(roles))
    issued = _new_secret(client) if client.uses_secret else None
    changes = {**_snapshot(client), "prefix": issued.record.prefix if issued is not None else None}
    audit.record("client.created", target=client.client_id, changes=changes)
    return client, issued


# Fields an update may set: every client setting, by model name.
UPDATABLE_FIELDS = frozenset(metadata.BY_NAME)
# ``client_update(owner=KEEP)``: leave the owner as it is.
KEEP: Any = object()


@transaction.atomic
def client_update(
    *,
    client: Client,
    fields: dict[str, object],
    tenants: Sequence[str] | None = None,
    roles: Sequence[str] | None = None,
    owner: AbstractBaseUser | None | object = KEEP,
) -> Client:
    """Update the fields given and leave the others as they are (so PUT and PATCH agree);
    ``owner`` (a user, or ``None`` for none) changes the owner unless left as ``KEEP``.

    Raises ``ValidationError`` (and changes nothing) on any invalid field.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    _lock(client)
    # Start from the row as it is now, not as this caller read it: a concurrent
    # update of other fields must not be undone by this save.
    client.refresh_from_db()
    before = _snapshot(client)
    for name, value in fields.items():
        setattr(client, name, _unique(value) if isinstance(value, list | tuple) else value)
    if owner is not KEEP:
        client.user = owner
    client.full_clean()
    client_validate_scopes(client)
    client.save()
    if tenants is not None:
        client.tenants.set(resolve_tenants(tenants))
    if roles is not None:
        client.roles.set(resolve_roles(roles))
    after = _snapshot(client)
    changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if changed:
        audit.record("client.updated", target=client.client_id, changes=changed)
    return client


def _snapshot(client: Client) -> dict[str, object]:
    """The client's settings as the audit trail shows them."""
    return {
        **{name: getattr(client, name) for name in sorted(UPDATABLE_FIELDS)},
        "jwks": jwks.without_certificates(client.jwks),
        "tenants": sorted(tenant.slug for tenant in client.tenants.all()),
        "roles": sorted(role.claim_value for role in client.roles.select_related("tenant")),
        "owner": client.user.get_username() if client.user is not None else None,
    }


def client_delete(*, client: Client) -> None:
    """Delete the client and its secrets; its tokens stop verifying where the client is checked."""
    client_id = client.client_id
    client.delete()
    audit.record("client.deleted", target=client_id)


# --- API keys (DESIGN §9.5) ----------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    """An API key just made: ``api_key`` is the only copy in clear; show it once."""

    api_key: str
    record: ApiKey


def api_key_lifetimes() -> tuple[int, int]:
    """``(API_KEY_DEFAULT_LIFETIME, API_KEY_MAX_LIFETIME)`` in seconds, read at call time
    (``authserver.checks`` refuses values that do not parse)."""
    return parse_duration(settings.API_KEY_DEFAULT_LIFETIME), parse_duration(settings.API_KEY_MAX_LIFETIME)


def _api_key_scopes(client: Client, scopes: Sequence[str] | None) -> list[str]:
    """The key's scopes: each allowed for the client (``tenant:<slug>`` for one of its
    tenants); none given: the client's default scopes."""
    if scopes is None:
        return list(client.default_scopes or client.allowed_scopes)
    tenants = set(client.tenants.values_list("slug", flat=True))
    refused = [
        scope for scope in scopes
        if not SCOPE_TOKEN_PATTERN.fullmatch(scope)
        or not (scope in client.allowed_scopes
                or (scope.startswith("tenant:") and scope.removeprefix("tenant:") in tenants))
    ]
    if refused:
        raise ValidationError({"scope": f"Not allowed for this client: {' '.join(refused)}."})
    return _unique(scopes)


def _api_key_expiry(now: datetime, expires_in: int | None, expires: datetime | None) -> datetime:
    default, maximum = api_key_lifetimes()
    if expires_in is not None and expires is not None:
        raise ValidationError({"expires": "Give expires_in or expires, not both."})
    if expires is None:
        if expires_in is not None and expires_in > maximum:
            raise ValidationError({"expires_in": f"At most API_KEY_MAX_LIFETIME ({maximum} seconds)."})
        return now + timedelta(seconds=expires_in or default)
    if expires <= now:
        raise ValidationError({"expires": "An API key must expire in the future."})
    if expires > now + timedelta(seconds=maximum):
        raise ValidationError({"expires": f"At most API_KEY_MAX_LIFETIME ({maximum} seconds) from now."})
    return expires


@transaction.atomic
def api_key_create(
    *,
    client: Client,
    name: str,
    scopes: Sequence[str] | None = None,
    expires_in: int | None = None,
    expires: datetime | None = None,
) -> IssuedApiKey:
    """Give ``client`` an API key (DESIGN §9.5), returned in clear this once.

    ``scopes`` must be allowed for the client (default: its default scopes); the
    lifetime is ``expires_in`` seconds or until ``expires``, by default
    ``API_KEY_DEFAULT_LIFETIME``, never past ``API_KEY_MAX_LIFETIME``.  Raises
    ``ValidationError`` keyed by API field names (``name``, ``scope``, ``expires_in``,
    ``expires``) and makes nothing.
    """
    _lock(client)
    now = timezone.now()
    name = name.strip()
    if not name or len(name) > 255:
        raise ValidationError({"name": "A name of 1 to 255 characters is required."})
    key_scopes = _api_key_scopes(client, scopes)
    key_expires = _api_key_expiry(now, expires_in, expires)
    api_key = client_secrets.generate_api_key()
    key_id, digest = client_secrets.hash_secret(api_key)
    record = ApiKey.objects.create(
        client=client, name=name, prefix=client_secrets.secret_prefix(api_key), hash=digest, hash_key_id=key_id,
        scopes=key_scopes, created=now, expires=key_expires,
    )
    audit.record(
        "api_key.created", target=client.client_id,
        changes={"prefix": record.prefix, "name": name, "scope": " ".join(key_scopes), "expires": _iso(key_expires)},
    )
    return IssuedApiKey(api_key=api_key, record=record)


@transaction.atomic
def api_key_revoke(*, client: Client, prefix: str, pk: int | None = None) -> ApiKey:
    """Revoke the client's live API key with this prefix (and ``pk``, when the caller
    knows which key it holds); ``ApiKey.DoesNotExist`` if none.

    Every process stops accepting it from its next request (the registry version moves)."""
    _lock(client)
    now = timezone.now()
    live = ApiKey.objects.filter(client=client, prefix=prefix).live(now)
    if pk is not None:
        live = live.filter(pk=pk)
    record = live.first()
    if record is None:
        raise ApiKey.DoesNotExist(f"no live API key with prefix {prefix!r}")
    live.update(revoked=now)
    record.refresh_from_db()
    audit.record("api_key.revoked", target=client.client_id, changes={"prefix": prefix, "name": record.name})
    return record


def client_validate_scopes(client: Client) -> None:
    missing = [s for s in client.default_scopes if s not in client.allowed_scopes]
    if missing:
        raise ValidationError(
            {"default_scopes": f"Default scopes must be allowed scopes; not allowed: {' '.join(missing)}."}
        )


def _unique(values: Sequence[Any]) -> list[Any]:
    """``values`` without repeats, in order (objects such as federated identities compared by value)."""
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return unique


# --- tenants and roles ------------------------------------------------------------------


def _apply(instance: Tenant | Role, fields: Mapping[str, object], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(instance, name, value)


def _save(instance: Tenant | Role, *, duplicate: dict[str, str]) -> None:
    """Validate and save; a unique clash lost to a concurrent insert is still a ``ValidationError``."""
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ValidationError(duplicate) from None


def _tenant_duplicate(tenant: Tenant) -> dict[str, str]:
    return {"slug": f"A tenant {tenant.slug!r} already exists."}


@transaction.atomic
def tenant_create(*, slug: str, name: str = "") -> Tenant:
    """Create a tenant; ``ValidationError`` on an invalid or taken slug."""
    tenant = Tenant(slug=slug, name=name)
    _save(tenant, duplicate=_tenant_duplicate(tenant))
    audit.record("tenant.created", target=slug, changes={"name": name})
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, fields: Mapping[str, object]) -> Tenant:
    """Update the fields given (``slug``, ``name``); the others keep their values."""
    _apply(tenant, fields, frozenset({"slug", "name"}))
    _save(tenant, duplicate=_tenant_duplicate(tenant))
    audit.record("tenant.updated", target=tenant.slug, changes={k: str(v) for k, v in fields.items()})
    return tenant


def tenant_delete(*, tenant: Tenant) -> None:
    """Delete the tenant and its roles; its clients lose both from their next token on."""
    slug = tenant.slug
    tenant.delete()
    audit.record("tenant.deleted", target=slug)


def _role_check_unique(role: Role) -> dict[str, str]:
    """Raise a field-named ``ValidationError`` when the role's name is taken where it lives;
    return the same message for a clash found only on insert."""
    where = f"tenant {role.tenant.slug!r}" if role.tenant is not None else "the global roles"
    duplicate = {"name": f"A role {role.name!r} already exists in {where}."}
    if Role.objects.filter(tenant=role.tenant, name=role.name).exclude(pk=role.pk).exists():
        raise ValidationError(duplicate)
    return duplicate


@transaction.atomic
def role_create(*, name: str, tenant: Tenant | None = None) -> Role:
    """Create a role, global (``tenant=None``) or of one tenant; ``ValidationError`` if taken."""
    role = Role(name=name, tenant=tenant)
    _save(role, duplicate=_role_check_unique(role))
    audit.record("role.created", target=role.claim_value)
    return role


@transaction.atomic
def role_update(*, role: Role, fields: Mapping[str, object]) -> Role:
    """Update the fields given (``name``, ``tenant``); the others keep their values."""
    _apply(role, fields, frozenset({"name", "tenant"}))
    _save(role, duplicate=_role_check_unique(role))
    audit.record("role.updated", target=role.claim_value, changes={k: str(v) for k, v in fields.items()})
    return role


def role_delete(*, role: Role) -> None:
    """Delete the role; its clients lose it from their next token on."""
    claim_value = role.claim_value
    role.delete()
    audit.record("role.deleted", target=claim_value)


# --- trusted issuers (workload identity federation, DESIGN §9.2) ----------------------------

ISSUER_FIELDS = frozenset({"name", "issuer", "jwks_uri", "jwks", "audiences", "max_token_lifetime", "enabled"})


def _issuer_snapshot(issuer: TrustedIssuer) -> dict[str, object]:
    return {name: getattr(issuer, name) for name in sorted(ISSUER_FIELDS - {"name"})}


def _issuer_duplicate(issuer: TrustedIssuer) -> dict[str, str]:
    """A message for each unique field another trusted issuer already holds (a clash lost to
    a concurrent insert may not be visible yet: then one message names both)."""
    others = TrustedIssuer.objects.exclude(pk=issuer.pk)
    taken = {}
    if others.filter(name=issuer.name).exists():
        taken["name"] = f"A trusted issuer named {issuer.name!r} already exists."
    holder = others.filter(issuer=issuer.issuer).values_list("name", flat=True).first()
    if holder is not None:
        taken["issuer"] = f"The trusted issuer {holder!r} already has this issuer."
    return taken or {
        "name": f"A trusted issuer named {issuer.name!r} or with issuer {issuer.issuer!r} already exists."
    }


@transaction.atomic
def trusted_issuer_create(*, name: str, issuer: str, **fields: Any) -> TrustedIssuer:
    """Trust a platform's JWTs; ``ValidationError`` on an invalid field or a taken name or issuer."""
    record = TrustedIssuer(name=name, issuer=issuer)
    _apply_issuer(record, fields)
    _save_issuer(record)
    audit.record("trusted_issuer.created", target=name, changes=_issuer_snapshot(record))
    return record


@transaction.atomic
def trusted_issuer_update(*, trusted_issuer: TrustedIssuer, fields: Mapping[str, object]) -> TrustedIssuer:
    """Update the fields given; the others keep their values.  Renaming it renames it in
    every client's federated identities, which would otherwise stop matching."""
    before, old_name = _issuer_snapshot(trusted_issuer), trusted_issuer.name
    _apply_issuer(trusted_issuer, fields)
    _save_issuer(trusted_issuer)
    if trusted_issuer.name != old_name:
        for client in Client.objects.filter(federated_identities__isnull=False).exclude(federated_identities=[]):
            identities = [
                {**identity, "trusted_issuer": trusted_issuer.name} if identity.get("trusted_issuer") == old_name
                else identity for identity in client.federated_identities
            ]
            if identities != client.federated_identities:
                client_update(client=client, fields={"federated_identities": identities})
    after = _issuer_snapshot(trusted_issuer)
    changes: dict[str, object] = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if trusted_issuer.name != old_name:
        changes["name"] = [old_name, trusted_issuer.name]
    audit.record("trusted_issuer.updated", target=trusted_issuer.name, changes=changes)
    return trusted_issuer


@transaction.atomic
def trusted_issuer_delete(*, trusted_issuer: TrustedIssuer) -> None:
    """Stop trusting the issuer, and remove the federated identities naming it from every client
    (each an audited client update): left behind, they would trust whatever issuer is next given
    that name, another cluster whose service accounts carry the same subjects."""
    name = trusted_issuer.name
    for client in Client.objects.select_for_update().exclude(federated_identities=[]):
        kept = [identity for identity in client.federated_identities if identity.get("trusted_issuer") != name]
        if kept != client.federated_identities:
            # Only identities go, which leaves every other field as valid as it was: no full_clean
            # (which would refuse a key-only client left with nothing to prove itself by).
            Client.objects.filter(pk=client.pk).update(federated_identities=kept)
            changes = {"federated_identities": [client.federated_identities, kept]}
            audit.record("client.updated", target=client.client_id, changes=changes)
    trusted_issuer.delete()
    audit.record("trusted_issuer.deleted", target=name)


def _apply_issuer(record: TrustedIssuer, fields: Mapping[str, object]) -> None:
    unknown = set(fields) - ISSUER_FIELDS
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(record, name, _unique(value) if isinstance(value, list | tuple) else value)


def _save_issuer(record: TrustedIssuer) -> None:
    record.full_clean(validate_unique=False)
    duplicate = TrustedIssuer.objects.filter(Q(name=record.name) | Q(issuer=record.issuer)).exclude(pk=record.pk)
    if duplicate.exists():
        raise ValidationError(_issuer_duplicate(record))
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        raise ValidationError(_issuer_duplicate(record)) from None
