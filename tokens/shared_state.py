"""Security state every worker and node shares: failure counters, lockouts, and records of
what may be used only once (assertion and DPoP ``jti``s, nonces).

None of it may live in one process's memory: an attacker would get each limit once per
worker, and a lockout or a used ``jti`` would hold only where it was recorded.  So it lives
in Redis when ``REDIS_URL`` is set, and in the database otherwise (the embedded default:
SQLite and two workers, nothing else to run).  Both stores offer the same three
operations, each one atomic statement:

- ``hit``: count one event in the current fixed window of ``window`` seconds;
- ``mark`` and ``marked``: set markers that hold until a time (lockouts), read several;
- ``add_once``: record a key until a time, true only for the first of any number of
  concurrent callers (replay protection).

Keys are hashed before they are stored, so no client id or address sits in the store.
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
from typing import Any, Protocol

from django.conf import settings
from django.db import connection

from authserver import dbread
from clients import registry
from clients.models import RegistryState
from tokens.models import SharedCounter, SharedMarker

# Share of writes that also delete expired rows from the database store.
_PRUNE_CHANCE = 0.01
# Redis calls give up after this long: an outage must cost callers little time.
_REDIS_TIMEOUT_SECONDS = 0.5


def hashed(namespace: str, value: str) -> str:
    """The stored form of a key: short, fixed-length, and revealing nothing."""
    return hashlib.blake2b(f"{namespace}\x00{value}".encode(), digest_size=16).hexdigest()


class SharedState(Protocol):
    def hit(self, key: str, *, window: int, now: float) -> tuple[int, float]:
        """Count one event for ``key``; return the count in the current window and when it ends."""

    def mark(self, key: str, *, until: float) -> None:
        """Set a marker that holds until ``until`` (seconds since the epoch)."""

    def marked(self, keys: list[str], *, now: float) -> dict[str, float]:
        """The markers among ``keys`` that still hold, with their end."""

    def add_once(self, key: str, *, until: float, now: float) -> bool:
        """Record ``key`` until ``until``; false if it is recorded already (and still holds)."""

    def lockouts_may_hold(self, *, now: float) -> bool:
        """False only when the store knows, without reading a marker, that no lockout holds now."""

    def raise_lockouts_until(self, until: float) -> None:
        """Say that a lockout may hold until ``until``; called before the lockout's marker is set."""


def _window(window: int, now: float) -> tuple[int, float]:
    """The fixed window holding ``now``: its number and its end."""
    index = int(now // window)
    return index, float((index + 1) * window)


class DatabaseState:
    """Rows in ``SharedCounter`` and ``SharedMarker``, written with single upserts, which
    SQLite (3.35+) and PostgreSQL both run atomically."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name
        self.counters = quote(SharedCounter._meta.db_table)
        self.markers = quote(SharedMarker._meta.db_table)
        self.key, self.count = quote("key"), quote("count")

    def _execute(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def _maybe_prune(self, now: float) -> None:
        if random.random() < _PRUNE_CHANCE:  # noqa: S311 (housekeeping, not security)
            self.prune(now=now)

    def prune(self, *, now: float) -> None:
        """Delete what no longer counts."""
        self._execute(f"DELETE FROM {self.counters} WHERE window_end <= %s", [now])  # noqa: S608
        self._execute(f"DELETE FROM {self.markers} WHERE expires <= %s", [now])  # noqa: S608

    def hit(self, key: str, *, window: int, now: float) -> tuple[int, float]:
        index, end = _window(window, now)
        rows = self._execute(
            f"INSERT INTO {self.counters} ({self.key}, window_end, {self.count}) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT ({self.key}) DO UPDATE SET {self.count} = {self.counters}.{self.count} + 1 "
            f"RETURNING {self.count}",
            [f"{key}:{index}", end],
        )
        self._maybe_prune(now)
        return int(rows[0][0]), end

    def mark(self, key: str, *, until: float) -> None:
        self._execute(
            f"INSERT INTO {self.markers} ({self.key}, expires) VALUES (%s, %s) "  # noqa: S608
            f"ON CONFLICT ({self.key}) DO UPDATE SET expires = excluded.expires",
            [key, until],
        )

    @functools.cache  # noqa: B019 (one store per process; a handful of sizes)
    def _marked_sql(self, size: int) -> str:
        placeholders = ", ".join(["%s"] * size)
        return (
            f"SELECT {self.key}, expires FROM {self.markers} "  # noqa: S608
            f"WHERE {self.key} IN ({placeholders}) AND expires > %s"
        )

    def marked(self, keys: list[str], *, now: float) -> dict[str, float]:
        # Every token request makes this read: on the driver's connection (authserver.dbread).
        return {key: float(expires) for key, expires in dbread.read(self._marked_sql(len(keys)), [*keys, now])}

    def add_once(self, key: str, *, until: float, now: float) -> bool:
        # A record that has run out may be taken again; a live one never.
        rows = self._execute(
            f"INSERT INTO {self.markers} ({self.key}, expires) VALUES (%s, %s) "  # noqa: S608
            f"ON CONFLICT ({self.key}) DO UPDATE SET expires = excluded.expires WHERE {self.markers}.expires <= %s "
            f"RETURNING {self.key}",
            [key, until, now],
        )
        self._maybe_prune(now)
        return bool(rows)

    # The lockout horizon lives in the registry's version row, which the token path reads anyway
    # (on SQLite, and on PostgreSQL without the change feed): while it lies in the past no
    # lockout can hold, and the markers need no query of their own.  Raised before a marker is
    # set, so a reader that misses the marker also missed the horizon only as it could miss a
    # marker set a moment later.
    def lockouts_may_hold(self, *, now: float) -> bool:
        until = registry.lockouts_until()
        return until is None or until > now

    def raise_lockouts_until(self, until: float) -> None:
        table = connection.ops.quote_name(RegistryState._meta.db_table)
        self._execute(
            f"UPDATE {table} SET lockouts_until = %s WHERE id = 1 AND lockouts_until < %s",  # noqa: S608
            [until, until],
        )


class RedisState:
    """Redis keys under ``authserver:``, each operation one command (or one pipeline)."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS
        )

    def hit(self, key: str, *, window: int, now: float) -> tuple[int, float]:
        index, end = _window(window, now)
        name = f"authserver:count:{key}:{index}"
        pipe = self.redis.pipeline()
        pipe.incr(name)
        pipe.expireat(name, int(end) + 1)
        count, _ = pipe.execute()
        return int(count), end

    def mark(self, key: str, *, until: float) -> None:
        self.redis.set(f"authserver:mark:{key}", repr(until), pxat=int(until * 1000))

    def marked(self, keys: list[str], *, now: float) -> dict[str, float]:
        values = self.redis.mget([f"authserver:mark:{key}" for key in keys])
        found = {key: float(value) for key, value in zip(keys, values, strict=True) if value is not None}
        return {key: until for key, until in found.items() if until > now}

    def add_once(self, key: str, *, until: float, now: float) -> bool:
        return bool(self.redis.set(f"authserver:once:{key}", b"1", nx=True, pxat=int(until * 1000)))

    def lockouts_may_hold(self, *, now: float) -> bool:
        return True  # one MGET of the markers is as cheap as any other read

    def raise_lockouts_until(self, until: float) -> None:
        pass


class _Stores:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.redis: dict[str, RedisState] = {}
        self.database: DatabaseState | None = None


_stores = _Stores()


def shared_state() -> SharedState:
    """Redis when ``REDIS_URL`` is set, the database otherwise (read at call time).

    The Redis client (its connection pool) is made once per process and URL; it holds
    connections, never state.
    """
    url: str = settings.REDIS_URL
    if not url:
        if _stores.database is None:
            _stores.database = DatabaseState()
        return _stores.database
    store = _stores.redis.get(url)
    if store is None:
        with _stores.lock:
            store = _stores.redis.setdefault(url, RedisState(url))
    return store
