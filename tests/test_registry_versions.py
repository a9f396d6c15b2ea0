"""Every write to the registry moves its version, whatever makes it, so no process
keeps serving what it cached before the write (``clients.versions``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from clients import registry, versions
from clients.models import ApiKey, Client, ClientSecret, RegistryState, Role, Tenant, TrustedIssuer
from clients.secrets import secret_prefix
from tokens import keys
from tokens.models import SigningKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(make_client: Callable[..., tuple[Client, str]]) -> Callable[[], registry.Candidate | None]:
    """A client whose snapshot this process holds; calling it returns the snapshot as a
    token request would see it now (``None``: the client or its secret is gone)."""
    client, secret = make_client(allowed_scopes=["read"], tenants=["acme"], roles=["admin", "acme/ops"])
    prefix = secret_prefix(secret)

    def snapshot() -> registry.Candidate | None:
        found = registry.candidates([client.client_id], prefix)
        return found[0] if found else None

    first = snapshot()
    assert first is not None and first.client.enabled and first.client.tenants == ("acme",)
    return snapshot


def _client() -> Client:
    return Client.objects.get()


def _raw(sql: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _client_save() -> None:
    client = _client()
    client.enabled = False
    client.save()


def _client_bulk_update() -> None:
    client = _client()
    client.enabled = False
    Client.objects.bulk_update([client], ["enabled"])


def _secret_bulk_create() -> None:
    secret = ClientSecret.objects.get()
    ClientSecret.objects.bulk_create(
        [ClientSecret(client=secret.client, prefix=secret.prefix, hash="0" * 64, hash_key_id="k")]
    )


def _tenant_save() -> None:
    tenant = Tenant.objects.get(slug="acme")
    tenant.slug = "beta"
    tenant.save()


def _through_bulk_create() -> None:
    beta = Tenant.objects.create(slug="beta")
    # Written behind the related manager's back: no m2m_changed signal.
    Client.tenants.through.objects.bulk_create([Client.tenants.through(client=_client(), tenant=beta)])


def _raw_update() -> None:
    table = connection.ops.quote_name(Client._meta.db_table)
    _raw(f"UPDATE {table} SET enabled = %s", False)  # noqa: S608


def _disabled(seen: registry.Candidate | None) -> bool:
    return seen is not None and not seen.client.enabled


def _revoked(seen: registry.Candidate | None) -> bool:
    return seen is not None and seen.secret.revoked is not None


def _gone(seen: registry.Candidate | None) -> bool:
    return seen is None


def _tenants(*slugs: str) -> Callable[[registry.Candidate | None], bool]:
    return lambda seen: seen is not None and seen.client.tenants == slugs


def _roles(*names: str) -> Callable[[registry.Candidate | None], bool]:
    return lambda seen: seen is not None and sorted(value for _, value in seen.client.roles) == sorted(names)


WRITES: dict[str, tuple[Callable[[], Any], Callable[[registry.Candidate | None], bool]]] = {
    # name: (the write, what the next snapshot must show)
    "Client.save": (_client_save, _disabled),
    "Client QuerySet.update": (lambda: Client.objects.update(enabled=False), _disabled),
    "Client bulk_update": (_client_bulk_update, _disabled),
    "Client QuerySet.delete": (lambda: Client.objects.all().delete(), _gone),
    "Client.delete": (lambda: _client().delete(), _gone),
    "Client raw SQL": (_raw_update, _disabled),
    "ClientSecret QuerySet.update": (lambda: ClientSecret.objects.update(revoked=timezone.now()), _revoked),
    "ClientSecret QuerySet.delete": (lambda: ClientSecret.objects.all().delete(), _gone),
    "ClientSecret bulk_create": (_secret_bulk_create, lambda seen: seen is not None),
    "Tenant.save": (_tenant_save, _tenants("beta")),
    "Tenant QuerySet.update": (lambda: Tenant.objects.update(slug="beta"), _tenants("beta")),
    "Tenant QuerySet.delete": (lambda: Tenant.objects.all().delete(), _tenants()),
    "Role QuerySet.update": (lambda: Role.objects.filter(name="admin").update(name="root"), _roles("acme/ops", "root")),
    "Role QuerySet.delete": (lambda: Role.objects.filter(name="ops").delete(), _roles("admin")),
    "client.tenants.clear": (lambda: _client().tenants.clear(), _tenants()),
    "client.tenants.set": (lambda: _client().tenants.set([Tenant.objects.create(slug="beta")]), _tenants("beta")),
    "client.roles.remove": (lambda: _client().roles.remove(Role.objects.get(name="admin")), _roles("acme/ops")),
    "through bulk_create": (_through_bulk_create, _tenants("acme", "beta")),
    "through QuerySet.delete": (lambda: Client.tenants.through.objects.all().delete(), _tenants()),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_kind_of_write_reaches_the_next_token_request(cached, write: str) -> None:
    change, expected = WRITES[write]
    before = registry.current_version()
    change()
    after = registry.current_version()
    assert after.clients > before.clients
    assert after.keys == before.keys  # a client change leaves the signing keys' caches alone
    seen = cached()
    assert expected(seen), f"{write}: the snapshot still shows {seen}"


def test_bulk_created_rows_move_the_version(db: None) -> None:
    before = registry.current_version().clients
    Tenant.objects.bulk_create([Tenant(slug="a"), Tenant(slug="b")])
    Role.objects.bulk_create([Role(name="reader")])
    Client.objects.bulk_create([Client(client_id="bulk-made", name="bulk")])
    assert registry.current_version().clients >= before + 3


def test_recording_a_secrets_last_use_is_not_a_change(cached) -> None:
    before = registry.current_version()
    ClientSecret.objects.update(last_used=timezone.now())
    assert registry.current_version() == before


def test_api_key_writes_move_the_version_but_recording_a_use_does_not(cached) -> None:
    from clients.services import api_key_create

    client = Client.objects.first()
    assert client is not None
    before = registry.current_version()
    issued = api_key_create(client=client, name="cron")
    created = registry.current_version()
    assert created.clients > before.clients
    ApiKey.objects.update(last_used=timezone.now())
    assert registry.current_version() == created
    ApiKey.objects.filter(pk=issued.record.pk).update(revoked=timezone.now())
    assert registry.current_version().clients > created.clients


def test_signing_key_writes_move_only_the_key_version(cached) -> None:
    keys.keyring()  # the first key
    before = registry.current_version()
    keys.key_rotate()
    SigningKey.objects.update(published_until=timezone.now() + timedelta(hours=1))
    after = registry.current_version()
    assert after.keys >= before.keys + 2
    assert after.clients == before.clients  # client snapshots survive a rotation
    assert cached() is not None


def test_a_rotation_reaches_the_key_ring_on_the_next_token_request(cached) -> None:
    ring = keys.keyring()
    SigningKey.objects.update(signing=None)
    SigningKey.objects.create(
        kid="made-by-hand", algorithm=ring.signer.algorithm, private_key=SigningKey.objects.get().private_key,
        public_jwk={**ring.signer.public_jwk, "kid": "made-by-hand"}, created=timezone.now(), signing=True,
    )
    cached()  # a token request reads the versions
    assert keys.keyring().signer.kid == "made-by-hand"


def test_a_column_added_later_is_covered_after_migrate(cached) -> None:
    table = connection.ops.quote_name(Tenant._meta.db_table)
    _raw(f"ALTER TABLE {table} ADD COLUMN colour varchar(10)")
    registry.install_triggers(using=connection.alias)
    before = registry.current_version().clients
    _raw(f"UPDATE {table} SET colour = %s", "blue")  # noqa: S608
    assert registry.current_version().clients == before + 1


def test_the_version_row_comes_back_after_a_flush(db: None) -> None:
    RegistryState.objects.all().delete()
    assert registry.current_version() == registry.Versions(0, 0)
    Tenant.objects.create(slug="after-flush")
    assert registry.current_version().clients == 1


def test_every_registry_table_is_watched() -> None:
    tables = {watched.table for watched in registry.WATCHED}
    expected = {model._meta.db_table for model in (Client, ClientSecret, ApiKey, Tenant, Role, TrustedIssuer)}
    expected |= {Client.tenants.through._meta.db_table, Client.roles.through._meta.db_table}
    assert tables == expected
    assert all(w.column == versions.CLIENTS for w in registry.WATCHED)


@pytest.mark.live
def test_every_migration_applies_to_a_database_whose_version_triggers_are_installed(tmp_path):
    """An upgrade, not a fresh install: each migration applied one at a time after the first ones,
    with the version triggers (installed after every ``migrate``) already naming
    ``RegistryState``, on this suite's database engine."""
    import os

    from django.db.migrations.loader import MigrationLoader

    from tests.live import fresh_postgres_database, manage, server_env

    names = sorted(name for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations
                   if app == "clients")
    test_url = os.environ.get("DATABASE_URL", "")

    def upgrade(url: str) -> None:
        env = server_env(database_url=url, issuer="http://127.0.0.1:8000")
        manage(env, "migrate", "clients", names[5], "-v", "0")  # 0006: RegistryState and its triggers
        for name in names[6:]:
            manage(env, "migrate", "clients", name, "-v", "0")
        manage(env, "migrate", "-v", "0")
        manage(env, "migrate", "clients", names[-2], "-v", "0")  # and back one, and forward again
        manage(env, "migrate", "-v", "0")

    if test_url.startswith("postgres"):
        with fresh_postgres_database(test_url, prefix="authserver_upgrade") as url:
            upgrade(url)
    else:
        upgrade(f"sqlite:///{tmp_path / 'upgraded.sqlite3'}")
