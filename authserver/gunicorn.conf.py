"""gunicorn settings; command-line flags and ``GUNICORN_CMD_ARGS`` override any of them."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# The sync worker, answering what gunicorn itself refuses (over-long or malformed requests,
# an application failing before it answered) in JSON like every other error.
worker_class = "authserver.workers.JsonErrorSyncWorker"
# gunicorn's defaults, stated: bytes of the request line (414 beyond it), number of header
# fields and bytes of one (431 beyond either).  Our requests need far less: credentials and
# client assertions travel in the body, and our access tokens are well under 2 KB.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Load the app before forking so a misconfiguration stops the master at once.
preload_app = True
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = os.environ.get("ACCESS_LOG", "-")
# The access log never records query strings or headers that may carry credentials.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
# gunicorn's logger, building only the atoms the access log format names (issue 17).
logger_class = "authserver.accesslog.AccessLogger"
# gunicorn's control socket lives at one fixed path per user, so two servers on one
# machine (several nodes, tests, a benchmark beside a dev server) would collide.
control_socket_disable = True


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    """Move everything the master loaded (the whole app, with preload_app) out of the
    garbage collector's reach before forking: collections in the workers then do not
    write to those objects, so their memory pages stay shared with the master instead
    of being copied into every worker over time."""
    import gc

    gc.freeze()


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """On PostgreSQL, each worker listens for registry changes (clients.changefeed), so
    that a token request needs no database query while nothing changes."""
    from clients import changefeed

    changefeed.start()


def _metrics_directory() -> str:
    """A fresh directory for this master's metrics, or the one it already made: gunicorn
    reads this file again on HUP.  A USR2 re-exec starts a new master, which makes its own."""
    import tempfile

    prefix = f"authserver-metrics-{os.getpid()}-"
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(named).startswith(prefix) and os.path.isdir(named):
        return named
    return tempfile.mkdtemp(prefix=prefix)


# Prometheus multiprocess mode (tokens/metrics.py): each worker writes its counts to files in
# this directory and a scrape sums them.  prometheus_client chooses the mode when it is first
# imported, and the master imports the app (preload_app) before its on_starting hook runs, so
# the directory is named here, as gunicorn reads its configuration, before any worker forks.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_directory()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker that stops (SIGTERM drain, max_requests, HUP) first writes the usage counts it
    has not written yet (clients.usage), so stopping a server loses none."""
    from clients import usage

    usage.flush(force=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A dead worker's counts stay in the sums (counters never go backwards); its live
    gauges, if any are ever defined, leave them."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server):  # type: ignore[no-untyped-def]
    import shutil

    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
