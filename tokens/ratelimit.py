"""Brute-force limits on client authentication (RFC 6749 §2.3.1: the server must protect the
token endpoint against brute force), counted in the shared state every worker sees.

Failed authentications are counted per source address and per (client id, address) in
fixed windows (``tokens.shared_state``: Redis with ``REDIS_URL``, else the database).  The
failure that uses up a limit sets a lockout marker until the window ends; from then on
attempts are refused with 429 before any secret is checked.  Counting per client *with*
the address means failures from elsewhere can never lock a working service out.  If the
store cannot be reached, limits are skipped (and logged): an unreachable Redis must not
stop every service from getting tokens.
"""

from __future__ import annotations

import functools
import logging
import math
import time

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from authserver.durations import parse_rate
from tokens.addresses import IPAddress
from tokens.errors import TooManyAttemptsError
from tokens.shared_state import hashed, shared_state

log = logging.getLogger("authserver.ratelimit")

_IP_GROUP = "failed-auth.ip"
_CLIENT_GROUP = "failed-auth.client"


def _store_trouble(error: Exception) -> None:
    log.warning("rate limiting skipped: cache unavailable (%s)", type(error).__name__)


def _limits(client_id: str | None, address: IPAddress | None) -> list[tuple[str, str, tuple[int, int]]]:
    """(group, hashed key, (limit, window)) for each limit in force."""
    keys = [(_IP_GROUP, str(address), settings.FAILED_AUTH_RATE_PER_IP)]
    if client_id is not None:
        keys.append((_CLIENT_GROUP, f"{client_id}\x00{address}", settings.FAILED_AUTH_RATE_PER_CLIENT))
    limits = []
    for group, value, rate in keys:
        parsed = _rate(rate)
        if parsed is not None:
            limits.append((group, hashed(group, value), parsed))
    return limits


_rate = functools.lru_cache(maxsize=16)(parse_rate)


def _lock_key(key: str) -> str:
    return f"lockout:{key}"


def check_not_locked_out(*, client_id: str | None, address: IPAddress | None) -> None:
    """Raise ``TooManyAttemptsError`` when the address, or this client from this address,
    has used up its failures for the current window.

    Every request passes here, so it is one read of the lockout markers ``record_failure``
    sets (one Redis ``MGET``, or one primary-key query), not a read of each counter; in the
    database, none while the registry's version row, read by the same request, says that no
    lockout can hold (``DatabaseState.lockouts_may_hold``).
    """
    now = time.time()
    try:
        store = shared_state()
        if not store.lockouts_may_hold(now=now):
            return  # and the markers' keys (two HMACs) need not even be made
        groups = {_lock_key(key): group for group, key, _ in _limits(client_id, address)}
        if not groups:
            return
        locked = store.marked(list(groups), now=now)
    except (DatabaseError, OSError, ConnectionError, RedisError) as error:
        _store_trouble(error)
        return
    for key, until in locked.items():
        log.warning("client authentication locked out: %s", "address" if groups[key] == _IP_GROUP else "client")
        raise TooManyAttemptsError(retry_after=max(1, math.ceil(until - now)))


def record_failure(*, client_id: str | None, address: IPAddress | None) -> None:
    """Count a failure; the one that uses up a limit locks the key until its window ends."""
    now = time.time()
    try:
        store = shared_state()
        for _, key, (limit, window) in _limits(client_id, address):
            count, window_end = store.hit(key, window=window, now=now)
            if count >= limit:
                store.raise_lockouts_until(window_end)
                store.mark(_lock_key(key), until=window_end)
    except (DatabaseError, OSError, ConnectionError, RedisError) as error:
        _store_trouble(error)
