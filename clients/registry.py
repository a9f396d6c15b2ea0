"""What the token endpoint knows about clients, cached in each process.

A token request needs the client, its secrets with the presented prefix, and its
scopes, tenants and roles.  Loading those through the ORM costs three queries and
about 1.5 ms; a token costs well under 1 ms without them.  So each process keeps a
snapshot per (client id, secret prefix) and asks the database one cheap question
per request: has the registry changed?

Every write to a client, secret, tenant, role or their links increments
``RegistryState.version`` inside the writer's transaction: database triggers do it,
whatever the write (``clients.versions``; the tables are ``WATCHED`` below).
API keys live in the same snapshot, all of them at once (``api_key_candidates``), so
an unknown key costs what a known one does and neither costs a query.  A
process that reads a new version drops its snapshots, so a change made by any
process on any node is seen by every process on its next request.  Recording a
secret's "last used" time is deliberately not a change: its column is left out of
the triggers, and the write waits until the response is sent (``note_use``).

Snapshots are keyed by the secret's prefix as well as the client id.  A caller who
does not know a live secret's prefix misses the cache exactly as a caller naming an
unknown client does, so response times never tell whether a client id exists.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.models import Q
from django.utils import timezone

from authserver import dbread
from clients import changefeed, metadata, versions
from clients.models import ApiKey, Client, ClientSecret, RegistryState, Role, Tenant, TrustedIssuer

log = logging.getLogger("authserver.registry")

# A secret's last use is written at most once per this interval per process.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# With the PostgreSQL change feed listening, the version is read at least this often anyway.
FEED_TRUST_SECONDS = 1.0
# Snapshots kept per process; past this the oldest go (each is well under 2 KB).
MAX_ENTRIES = 20_000

# The tables behind the snapshots; a secret's last use is bookkeeping, not a change.
WATCHED = versions.watched_models(
    (Client, ClientSecret, ApiKey, Tenant, Role, TrustedIssuer), column=versions.CLIENTS, bookkeeping=("last_used",)
)


@dataclass(frozen=True, slots=True)
class SecretRecord:
    pk: int
    hash: str
    hash_key_id: str
    expires: datetime | None
    revoked: datetime | None
    last_used: datetime | None

    def is_live(self, at: datetime) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > at)


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A client as the token, introspection and revocation endpoints see it.

    Its settings are those ``clients.metadata`` marks for the token path, read as
    attributes (``record.allowed_scopes``); lists are frozen to tuples.
    """

    pk: int
    client_id: str
    settings: Mapping[str, Any]
    tenants: tuple[str, ...]
    # (tenant slug or None for a global role, value in the `roles` claim)
    roles: tuple[tuple[str | None, str], ...]

    def __getattr__(self, name: str) -> Any:
        if name == "settings":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(name) from None

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True, slots=True)
class IssuerRecord:
    """A trusted issuer as federated client authentication sees it (DESIGN §9.2)."""

    name: str
    issuer: str
    jwks_uri: str
    jwks: Mapping[str, Any] | None
    audiences: tuple[str, ...]
    max_token_lifetime: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as introspection and bearer authentication see it (never the key itself)."""

    pk: int
    prefix: str
    hash: str
    hash_key_id: str
    client: ClientRecord
    scopes: tuple[str, ...]
    created: datetime
    expires: datetime
    revoked: datetime | None
    last_used: datetime | None

    def is_live(self, at: datetime) -> bool:
        return self.revoked is None and self.expires > at


@dataclass(frozen=True, slots=True)
class Candidate:
    client: ClientRecord
    secret: SecretRecord


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: int | None = None
        self.keys_version: int | None = None
        self.marker: tuple[int, int] | None = None
        self.read_at = 0.0
        self.entries: dict[tuple[str, str], tuple[Candidate, ...]] = {}
        self.clients: dict[str, ClientRecord] = {}
        self.issuers: dict[str, IssuerRecord] = {}
        # Every live API key of an enabled client, by prefix (``api_key_candidates``).
        self.api_keys: dict[str, tuple[ApiKeyRecord, ...]] | None = None
        self.key_touched: dict[int, datetime] = {}
        self.key_pending: dict[int, datetime] = {}
        self.touched: dict[int, datetime] = {}
        self.pending: dict[int, datetime] = {}


_cache = _Cache()


def reset() -> None:
    """Forget everything cached in this process (tests; the next request reloads)."""
    _cache.__init__()  # type: ignore[misc]


class Versions(NamedTuple):
    """``RegistryState``'s row: one version per cache (``clients.versions``), and until when a
    failed-authentication lockout may hold (``None``: the row is missing, so it is unknown)."""

    clients: int
    keys: int
    lockouts_until: float | None = None


_VERSION_SQL: str | None = None


def _read_versions(db: Any) -> Versions:
    """One primary-key read on the driver's own connection (``authserver.dbread``)."""
    global _VERSION_SQL
    if _VERSION_SQL is None:
        table = db.ops.quote_name(RegistryState._meta.db_table)
        columns = ", ".join(db.ops.quote_name(name) for name in (*versions.COLUMNS, "lockouts_until"))
        _VERSION_SQL = f"SELECT {columns} FROM {table} WHERE id = 1"  # noqa: S608 (fixed names)
    rows = dbread.read(_VERSION_SQL, db=db)
    return Versions(int(rows[0][0]), int(rows[0][1]), float(rows[0][2])) if rows else Versions(0, 0)


def current_version() -> Versions:
    """The registry's versions: one primary-key read, without the ORM's query building.

    With ``CONN_HEALTH_CHECKS`` Django would first send ``SELECT 1`` on a persistent
    connection at the start of each request; this read is itself that check (a
    broken connection fails it, is closed, and the read is retried once on a new
    one), which saves PostgreSQL a round trip per token.
    """
    db: Any = connections[DEFAULT_DB_ALIAS]  # django-stubs lacks the health-check attributes
    if db.connection is not None and db.health_check_enabled and not db.health_check_done and not db.in_atomic_block:
        db.health_check_done = True
        try:
            return _read_versions(db)
        except (OperationalError, InterfaceError):
            log.info("persistent database connection broken; reconnecting")
            db.close()
    return _read_versions(db)


def lockouts_until() -> float | None:
    """Until when a failed-authentication lockout may hold, as this request read it with the
    registry's version (reading it now if the request has not yet); ``None`` when unknown: outside
    a request, or when the PostgreSQL change feed spared the read (``tokens.ratelimit`` then asks
    the lockout markers themselves)."""
    if not _request.active:
        return None
    _fresh_version()
    return _request.lockouts_until


def observed_key_version() -> int | None:
    """The signing-key version this process last read (no query); ``None`` before the first."""
    return _cache.keys_version


class _Request(threading.local):
    """The version one request observed: its client authentication and its bearer key
    then share one read (set between ``request_started`` and ``request_finished``)."""

    active = False
    version: int | None = None
    # What this request read from the database (never a value kept from an earlier one).
    lockouts_until: float | None = None


_request = _Request()


def request_started(**_: Any) -> None:
    _request.active, _request.version, _request.lockouts_until = True, None, None


def request_finished(**_: Any) -> None:
    _request.active, _request.version, _request.lockouts_until = False, None, None


def _fresh_version() -> int:
    """The registry version, with this process's snapshots dropped when it moved.

    One query (the version), or none while this worker's PostgreSQL change feed listens
    and has seen no change.
    """
    if _request.active and _request.version is not None:
        return _request.version  # this request's client authentication and bearer key share one read
    cache = _cache
    # The feed's marker is read before the version: a commit after the read notifies,
    # which moves the marker, so an unchanged marker means nothing changed since.  The
    # version is still read once a second, a bound should notifications ever go missing.
    marker = changefeed.marker()
    now = time.monotonic()
    if (
        marker is not None and marker == cache.marker and cache.version is not None
        and now - cache.read_at < FEED_TRUST_SECONDS
    ):
        version = cache.version
    else:
        version, cache.keys_version, lockouts_until = current_version()
        cache.read_at = now
        if _request.active:
            _request.lockouts_until = lockouts_until
    if version != cache.version or marker != cache.marker:
        with cache.lock:
            if version != cache.version:
                cache.entries = {}
                cache.clients = {}
                cache.issuers = {}
                cache.api_keys = None
                cache.version = version
            cache.marker = marker
    if _request.active:
        _request.version = version
    return version


def _remember(store: dict[Any, Any], key: Any, value: Any, version: int) -> None:
    with _cache.lock:
        if _cache.version == version:
            if len(store) >= MAX_ENTRIES:
                store.pop(next(iter(store)))
            store[key] = value


def candidates(client_ids: Iterable[str], prefix: str) -> list[Candidate]:
    """Secrets with ``prefix`` of the clients named, live or not, preferred client first."""
    version = _fresh_version()
    found: list[Candidate] = []
    for client_id in client_ids:
        key = (client_id, prefix)
        entry = _cache.entries.get(key)
        if entry is None:
            # Loaded after reading the version, so never older than it.
            entry = _load(client_id, prefix)
            if not entry:
                continue  # unknown clients and foreign prefixes are not remembered
            _remember(_cache.entries, key, entry, version)
        found.extend(entry)
    return found


def client(client_id: str) -> ClientRecord | None:
    """The client with this id, for methods that present no secret (``private_key_jwt``).

    The same snapshot and version check as ``candidates``; unknown ids are not remembered.
    """
    version = _fresh_version()
    record = _cache.clients.get(client_id)
    if record is None:
        row = (
            Client.objects.filter(client_id=client_id).order_by()
            .values("pk", "client_id", *_CLIENT_FIELDS).first()
        )
        if row is None:
            return None
        record = _record(row["pk"], row["client_id"], {name: row[name] for name in _CLIENT_FIELDS})
        _remember(_cache.clients, client_id, record, version)
    return record


def trusted_issuer(issuer: str) -> IssuerRecord | None:
    """The trusted issuer whose ``iss`` is ``issuer``, enabled or not; ``None`` if there is none.

    Snapshotted like clients; an unknown issuer costs one query, as an unknown client does.
    """
    version = _fresh_version()
    if issuer in _cache.issuers:
        return _cache.issuers[issuer]
    if not _ISSUER_SHAPE.fullmatch(issuer):
        return None  # no issuer can have it (control characters, NUL, too long): never ask the database
    row = TrustedIssuer.objects.filter(issuer=issuer).values(
        "name", "issuer", "jwks_uri", "jwks", "audiences", "max_token_lifetime", "enabled"
    ).first()
    if row is None:
        return None  # unknown issuers are not remembered: a caller chooses them
    record = IssuerRecord(
        name=row["name"], issuer=row["issuer"], jwks_uri=row["jwks_uri"], jwks=row["jwks"],
        audiences=tuple(row["audiences"]), max_token_lifetime=row["max_token_lifetime"], enabled=row["enabled"],
    )
    _remember(_cache.issuers, issuer, record, version)
    return record


_ISSUER_SHAPE = re.compile(r"[\x21-\x7e]{1,2000}")


_CLIENT_FIELDS = tuple(setting.name for setting in metadata.token_path_settings())


def _load(client_id: str, prefix: str) -> tuple[Candidate, ...]:
    rows = list(
        ClientSecret.objects.filter(client__client_id=client_id, prefix=prefix)
        .order_by()
        .values("pk", "hash", "hash_key_id", "expires", "revoked", "last_used", "client_id", "client__client_id",
                *(f"client__{name}" for name in _CLIENT_FIELDS))
    )
    if not rows:
        return ()
    first = rows[0]
    record = _record(
        first["client_id"], first["client__client_id"], {name: first[f"client__{name}"] for name in _CLIENT_FIELDS}
    )
    return tuple(
        Candidate(
            client=record,
            secret=SecretRecord(
                pk=row["pk"], hash=row["hash"], hash_key_id=row["hash_key_id"], expires=row["expires"],
                revoked=row["revoked"], last_used=row["last_used"],
            ),
        )
        for row in rows
    )


def _record(client_pk: int, client_id: str, settings: dict[str, Any]) -> ClientRecord:
    tenants = tuple(Tenant.objects.filter(clients=client_pk).order_by("slug").values_list("slug", flat=True))
    roles = tuple(
        (tenant, f"{tenant}/{name}" if tenant is not None else name)
        for name, tenant in Role.objects.filter(clients=client_pk)
        .order_by("tenant__slug", "name")
        .values_list("name", "tenant__slug")
    )
    return ClientRecord(
        pk=client_pk,
        client_id=client_id,
        settings=MappingProxyType({name: _frozen(value) for name, value in settings.items()}),
        tenants=tenants,
        roles=roles,
    )


def api_key_candidates(prefix: str) -> tuple[ApiKeyRecord, ...]:
    """The live API keys of enabled clients with ``prefix``: none, usually one.

    The whole set is one snapshot per process, loaded after the version moved (so a
    revocation, an expiry set earlier, a client disabled or deleted is seen from the
    next request on); a prefix no key has costs no query, as a known one does not.
    """
    cache = _cache
    version = _fresh_version()
    keys = cache.api_keys
    if keys is None:
        keys = _load_api_keys()
        with cache.lock:
            if cache.version == version:
                cache.api_keys = keys
    return keys.get(prefix, ())


def _load_api_keys() -> dict[str, tuple[ApiKeyRecord, ...]]:
    rows = list(
        ApiKey.objects.live(timezone.now()).filter(client__enabled=True).order_by()
        .values("pk", "prefix", "hash", "hash_key_id", "scopes", "created", "expires", "revoked", "last_used",
                "client_id", "client__client_id", *(f"client__{name}" for name in _CLIENT_FIELDS))
    )
    clients: dict[int, ClientRecord] = {}
    found: dict[str, list[ApiKeyRecord]] = {}
    for row in rows:
        client_pk = row["client_id"]
        if client_pk not in clients:
            clients[client_pk] = _record(
                client_pk, row["client__client_id"], {name: row[f"client__{name}"] for name in _CLIENT_FIELDS}
            )
        found.setdefault(row["prefix"], []).append(
            ApiKeyRecord(
                pk=row["pk"], prefix=row["prefix"], hash=row["hash"], hash_key_id=row["hash_key_id"],
                client=clients[client_pk], scopes=tuple(row["scopes"]), created=row["created"],
                expires=row["expires"], revoked=row["revoked"], last_used=row["last_used"],
            )
        )
    return {prefix: tuple(records) for prefix, records in found.items()}


def _note(touched: dict[int, datetime], pending: dict[int, datetime], pk: int, last_used: datetime | None,
          now: datetime) -> None:
    """Remember a use of row ``pk``; written after the response, at most once a minute."""
    last = touched.get(pk, last_used)
    if last is not None and now - last < LAST_USED_GRANULARITY:
        return
    with _cache.lock:
        touched[pk] = now
        pending[pk] = now


def note_api_key_use(key: ApiKeyRecord, now: datetime) -> None:
    """Remember that ``key`` was used (``flush_uses`` writes it)."""
    _note(_cache.key_touched, _cache.key_pending, key.pk, key.last_used, now)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def note_use(secret: SecretRecord, now: datetime) -> None:
    """Remember that ``secret`` was used (``flush_uses`` writes it)."""
    _note(_cache.touched, _cache.pending, secret.pk, secret.last_used, now)


def flush_uses(**_: Any) -> None:
    """Write pending "last used" times of secrets and API keys (a ``request_finished`` handler).

    Only ``last_used`` is written, a column the triggers leave out: no version moves
    and no cache is dropped.
    The condition keeps several processes from writing the same minute twice.
    """
    cache = _cache
    if not cache.pending and not cache.key_pending:
        return
    with cache.lock:
        pending, cache.pending = cache.pending, {}
        key_pending, cache.key_pending = cache.key_pending, {}
        if len(cache.touched) > MAX_ENTRIES:
            cache.touched = {}
        if len(cache.key_touched) > MAX_ENTRIES:
            cache.key_touched = {}
    try:
        for model, uses in ((ClientSecret, pending), (ApiKey, key_pending)):
            for pk, at in uses.items():
                model.objects.filter(pk=pk).filter(
                    Q(last_used__isnull=True) | Q(last_used__lt=at - LAST_USED_GRANULARITY)
                ).update(last_used=at)
    except DatabaseError as error:
        log.warning("last-use times not recorded: %s", type(error).__name__)


def install_triggers(*, using: str, **_: Any) -> None:
    """``post_migrate``: make every write to the registry's tables move its version."""
    versions.install(WATCHED, using=using)
