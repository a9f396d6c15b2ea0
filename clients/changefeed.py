"""PostgreSQL only: registry changes pushed to every worker (LISTEN/NOTIFY), so that a token
request needs no database query at all in steady state.

Every registry write notifies ``CHANNEL`` in its own transaction (a trigger, ``clients.versions``):
PostgreSQL delivers the notification when that transaction commits and drops it if it rolls
back.  Each gunicorn worker runs one daemon thread (started by gunicorn's ``post_fork`` hook)
with its own connection, listening on the channel and counting notifications.  While the
thread listens, ``clients.registry`` reads the registry version only when the count has moved
(or a second has passed, a bound should notifications ever go missing);
whenever it does not listen (starting, connection lost, reconnecting), every token request
reads the version, as on SQLite.  So a change is seen as soon as the worker's thread has taken
its notification (a millisecond or so after the commit; under heavy load a few, while the
thread waits for the interpreter lock), and a lost feed costs speed, never correctness.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger("authserver.registry")

CHANNEL = "authserver_registry"
APPLICATION_NAME = "authserver changefeed"
# How long the thread waits for a notification before checking that its connection lives.
_IDLE_CHECK_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = 5.0


class _Feed:
    def __init__(self) -> None:
        # None while not listening; else (generation, notifications seen).  One tuple,
        # replaced whole, so readers in the request thread never see half an update.
        self.marker: tuple[int, int] | None = None
        self.generation = 0
        self.pid: int | None = None


_feed = _Feed()


def marker() -> tuple[int, int] | None:
    """Changes seen by this worker's listener, or ``None`` when it is not listening."""
    return _feed.marker


# What the registry's triggers call in the writer's transaction (``clients.versions``).
NOTIFY_CALL = f"pg_notify('{CHANNEL}', '')"


def start() -> None:
    """Start this process's listener (PostgreSQL only; once per process; gunicorn's ``post_fork``).

    ``REGISTRY_CHANGE_FEED=off`` turns it off, as it must be when the app reaches PostgreSQL
    through a transaction-pooling proxy (PgBouncer in transaction mode), where a LISTEN has
    no session of its own to live in.
    """
    if (
        # getattr: the benchmark's baseline projects share authserver's gunicorn config
        not getattr(settings, "REGISTRY_CHANGE_FEED", False)
        or connections[DEFAULT_DB_ALIAS].vendor != "postgresql"
        or _feed.pid == os.getpid()
    ):
        return
    _feed.__init__()  # type: ignore[misc]  # nothing inherited from the parent counts here
    _feed.pid = os.getpid()
    threading.Thread(target=_listen_forever, name="registry-changefeed", daemon=True).start()


def _connect() -> Any:
    db = connections[DEFAULT_DB_ALIAS]
    # Django's own way of connecting, with the configured host, credentials and options.
    connection = db.get_new_connection(db.get_connection_params())
    connection.autocommit = True
    connection.execute(f"SET application_name TO '{APPLICATION_NAME}'")  # how operators tell it apart
    return connection


def _listen_forever() -> None:
    backoff = 0.2
    while True:
        try:
            with _connect() as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                _feed.generation += 1
                seen = 0
                _feed.marker = (_feed.generation, seen)
                backoff = 0.2
                while True:
                    for _ in connection.notifies(timeout=_IDLE_CHECK_SECONDS):
                        seen += 1
                        _feed.marker = (_feed.generation, seen)
                    connection.execute("SELECT 1")  # idle: make sure the connection still lives
        except Exception as error:  # any failure: fall back to reading the version, retry
            if _feed.marker is not None:
                log.warning(
                    "registry change feed lost (%s); reading the registry version on every request until it is back",
                    type(error).__name__,
                )
            _feed.marker = None
            time.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
