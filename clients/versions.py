"""Registry versions, moved by the database itself on every write.

Each process caches what the token path needs (``clients.registry`` for clients,
``tokens.keys`` for signing keys) and compares one version per cache with the
database's on each request.  The versions live in one row of ``RegistryState``: one
column per cache, so a key rotation does not drop every process's client snapshots.

A version must move with every write to the tables behind its cache, whatever makes
the write: ``save()``, ``QuerySet.update()``, ``bulk_create()``, a queryset
``delete()``, a many-to-many ``set()``, a migration, ``loaddata`` or hand-written SQL.
Python hooks (model signals) miss the bulk paths, so the database does it: after
every ``migrate`` (Django's ``post_migrate`` signal) each watched table gets triggers
that increment its version inside the writer's own transaction, and on PostgreSQL
also ``pg_notify`` the change feed (``clients.changefeed``), delivered at commit.

The triggers cover the columns the table has when they are installed, so a column
added by a later migration is covered by that migration's ``migrate`` run; only the
columns named as bookkeeping (a secret's "last used" time) are left out, which is how
recording a use neither invalidates caches nor costs the token path anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import Model

from clients import changefeed
from clients.models import RegistryState

# RegistryState columns, one per cache.
CLIENTS = "version"
SIGNING_KEYS = "keys_version"
COLUMNS = (CLIENTS, SIGNING_KEYS)

_PREFIX = "authserver_bump"


@dataclass(frozen=True)
class Watched:
    """A table whose writes move ``column``, except writes to ``bookkeeping`` columns only."""

    table: str
    column: str
    bookkeeping: frozenset[str] = frozenset()


def watched_models(models: Iterable[type[Model]], *, column: str, bookkeeping: Iterable[str] = ()) -> list[Watched]:
    """The models' tables and their auto-created many-to-many tables."""
    skip = frozenset(bookkeeping)
    tables: list[Watched] = []
    for model in models:
        tables.append(Watched(model._meta.db_table, column, skip))
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through is not None and through._meta.auto_created:
                tables.append(Watched(through._meta.db_table, column))
    return tables


def install(watched: Iterable[Watched], *, using: str) -> None:
    """(Re)create the triggers of each watched table that exists in ``using``."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    state = RegistryState._meta.db_table
    if state not in existing:
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for table in watched:
            if table.table not in existing:
                continue
            columns = [
                column.name for column in connection.introspection.get_table_description(cursor, table.table)
                if column.name not in table.bookkeeping
            ]
            for statement in _statements(connection, table, columns, state):
                cursor.execute(statement)


def _statements(connection: Any, table: Watched, columns: list[str], state: str) -> list[str]:
    quote = connection.ops.quote_name
    name = f"{_PREFIX}_{table.table}"
    target, column = quote(table.table), quote(table.column)
    others = ", ".join(quote(c) for c in COLUMNS)
    values = ", ".join("1" if c == table.column else "0" for c in COLUMNS)
    # Names from the models, quoted; no value from outside.
    upsert = (
        f"INSERT INTO {quote(state)} (id, {others}) VALUES (1, {values}) "  # noqa: S608
        f"ON CONFLICT (id) DO UPDATE SET {column} = {quote(state)}.{column} + 1"
    )
    update_of = ", ".join(quote(c) for c in columns)
    if connection.vendor == "postgresql":
        function = quote(f"{name}_fn")
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {upsert}; PERFORM {changefeed.NOTIFY_CALL}; RETURN NULL; END $$",
            f"DROP TRIGGER IF EXISTS {quote(name)} ON {target}",
            f"DROP TRIGGER IF EXISTS {quote(name + '_update')} ON {target}",
            f"CREATE TRIGGER {quote(name)} AFTER INSERT OR DELETE OR TRUNCATE ON {target} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {quote(name + '_update')} AFTER UPDATE OF {update_of} ON {target} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    statements = []
    for event in ("INSERT", "DELETE", f"UPDATE OF {update_of}"):
        trigger = quote(f"{name}_{event.split()[0].lower()}")
        statements += [
            f"DROP TRIGGER IF EXISTS {trigger}",
            f"CREATE TRIGGER {trigger} AFTER {event} ON {target} FOR EACH ROW BEGIN {upsert}; END",
        ]
    return statements
