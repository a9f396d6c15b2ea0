"""Small reads on the hot path, run on the database driver's own connection.

Django's cursor wrapper costs about as much as a primary-key read itself (on SQLite some
20 µs of the 30 a read takes), and the token endpoint makes such a read on every request.
Errors are still translated (``wrap_database_errors``) and the statement still shows in
``connection.queries`` when Django records queries, so tests see it like any other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


@functools.cache
def _native(sql: str, vendor: str) -> str:
    # The sqlite3 module takes qmark parameters; psycopg takes Django's %s as they are.
    return sql.replace("%s", "?") if vendor == "sqlite" else sql


def read(sql: str, params: Sequence[Any] = (), *, db: Any = None) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (``%s`` placeholders, no literal ``%``) on the default database."""
    db = db if db is not None else connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    with db.wrap_database_errors:
        rows = db.connection.execute(_native(sql, db.vendor), tuple(params)).fetchall()
    if db.queries_logged:
        db.queries_log.append({"sql": sql, "time": "0.000"})
    return list(rows)
