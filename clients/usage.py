"""Per-client usage: tokens issued and failed client authentications, per client and hour.

Counting must not cost the token path a database write: each process counts in memory and
writes its counts after a response (``request_finished``) at most once a minute, and when
its worker exits (gunicorn's ``worker_exit``), each hour's counts added to the row already
there with one upsert per (client, hour).  So a row is exact once every process has written,
at most a minute (or one worker's life) late.  Counts for client ids that name no client are
dropped when written, and a process keeps at most ``MAX_PENDING`` distinct keys between
writes, so callers inventing client ids cannot grow anything.  Rows older than
``USAGE_RETENTION`` are deleted as counts are written.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from clients.models import Client, ClientUsage

log = logging.getLogger("authserver.usage")

FLUSH_INTERVAL_SECONDS = 60.0
MAX_PENDING = 10_000


class _Pending:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (client id, hour) -> [tokens issued, failed authentications]
        self.counts: dict[tuple[str, datetime], list[int]] = {}
        self.flushed_at = time.monotonic()


_pending = _Pending()


def reset() -> None:
    """Forget this process's unwritten counts (tests)."""
    _pending.__init__()  # type: ignore[misc]


def _hour(now: float) -> datetime:
    return datetime.fromtimestamp(now - now % 3600, tz=UTC)


def _count(client_id: str, index: int) -> None:
    key = (client_id, _hour(time.time()))
    with _pending.lock:
        counts = _pending.counts.get(key)
        if counts is None:
            if len(_pending.counts) >= MAX_PENDING:
                return
            counts = _pending.counts[key] = [0, 0]
        counts[index] += 1


def token_issued(client_id: str) -> None:
    _count(client_id, 0)


def authentication_failed(client_id: str) -> None:
    _count(client_id, 1)


def flush(*, force: bool = False, **_: Any) -> None:
    """Write this process's counts (a ``request_finished`` handler: at most once a minute)."""
    if not _pending.counts or (not force and time.monotonic() - _pending.flushed_at < FLUSH_INTERVAL_SECONDS):
        return
    with _pending.lock:
        counts, _pending.counts = _pending.counts, {}
        _pending.flushed_at = time.monotonic()
    try:
        _write(counts)
    except DatabaseError as error:
        log.warning("usage counts not recorded: %s", type(error).__name__)


def _write(counts: dict[tuple[str, datetime], list[int]]) -> None:
    quote = connection.ops.quote_name
    usage, clients = quote(ClientUsage._meta.db_table), quote(Client._meta.db_table)
    # Names from the models, quoted; values as parameters.
    upsert = (
        f"INSERT INTO {usage} (client_id, hour, tokens_issued, failed_authentications) "  # noqa: S608
        f"SELECT id, %s, %s, %s FROM {clients} WHERE client_id = %s "
        f"ON CONFLICT (client_id, hour) DO UPDATE SET "
        f"tokens_issued = {usage}.tokens_issued + excluded.tokens_issued, "
        f"failed_authentications = {usage}.failed_authentications + excluded.failed_authentications"
    )
    with connection.cursor() as cursor:
        for (client_id, hour), (issued, failed) in counts.items():
            cursor.execute(upsert, [hour, issued, failed, client_id])
    cutoff = datetime.now(tz=UTC) - timedelta(seconds=settings.USAGE_RETENTION)
    ClientUsage.objects.filter(hour__lt=cutoff).delete()
