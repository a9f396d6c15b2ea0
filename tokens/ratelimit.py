"""Brute-force limits on client authentication (RFC 6749 §2.3.1), counted in the cache.

Failed authentications are counted per source address and per (client id, address)
in fixed windows (django-ratelimit's counters in the configured cache).  Past a
limit, attempts are refused with 429 before any secret is checked or the database
is asked.  Counting per client *with* the address means failures from elsewhere can
never lock a working service out.  If the cache is down, limits are skipped (and
logged): an unreachable Redis must not stop every service from getting tokens.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django_ratelimit.core import get_usage

from tokens.addresses import IPAddress
from tokens.errors import TooManyAttemptsError

log = logging.getLogger("authserver.ratelimit")

_IP_GROUP = "authserver.failed-auth.ip"
_CLIENT_GROUP = "authserver.failed-auth.client"


def _usage(group: str, value: str, rate: str, *, increment: bool) -> dict[str, Any] | None:
    if rate == "off":
        return None
    try:
        # django-ratelimit only reads the request to match methods; every method counts here.
        return get_usage(None, group=group, key=lambda _group, _request: value, rate=rate, increment=increment)
    except Exception as error:  # any cache failure: degrade, never fail closed
        log.warning("rate limiting skipped: cache unavailable (%s)", type(error).__name__)
        return None


def _keys(client_id: str | None, address: IPAddress | None) -> list[tuple[str, str, str]]:
    keys = [(_IP_GROUP, str(address), settings.FAILED_AUTH_RATE_PER_IP)]
    if client_id is not None:
        keys.append((_CLIENT_GROUP, f"{client_id}\x00{address}", settings.FAILED_AUTH_RATE_PER_CLIENT))
    return keys


def _lock_key(group: str, value: str) -> str:
    # Short keys: every request reads two, and Django validates keys character by character.
    return "lockout:" + hashlib.blake2b(f"{group}\x00{value}".encode(), digest_size=12).hexdigest()


def check_not_locked_out(*, client_id: str | None, address: IPAddress | None) -> None:
    """Raise ``TooManyAttemptsError`` when the address, or this client from this address,
    has used up its failures for the current window.

    Every request passes here, so it is one cache read (``get_many`` of the lockout
    markers ``record_failure`` sets), not a read of each counter.
    """
    keys = {_lock_key(group, value): group for group, value, rate in _keys(client_id, address) if rate != "off"}
    if not keys:
        return
    try:
        locked = cache.get_many(list(keys))
    except Exception as error:  # any cache failure: degrade, never fail closed
        log.warning("rate limiting skipped: cache unavailable (%s)", type(error).__name__)
        return
    for key, until in locked.items():
        log.warning("client authentication locked out: %s", "address" if keys[key] == _IP_GROUP else "client")
        raise TooManyAttemptsError(retry_after=max(1, math.ceil(until - time.time())))


def record_failure(*, client_id: str | None, address: IPAddress | None) -> None:
    """Count a failure; the one that uses up a limit locks the key until its window ends."""
    for group, value, rate in _keys(client_id, address):
        usage = _usage(group, value, rate, increment=True)
        if usage is not None and usage["count"] >= usage["limit"]:
            time_left = max(1, int(usage["time_left"]))
            try:
                cache.set(_lock_key(group, value), time.time() + time_left, timeout=time_left)
            except Exception as error:
                log.warning("rate limiting skipped: cache unavailable (%s)", type(error).__name__)
