"""SIGTERM under load: the container's entry point (``bin/serve``) drains and exits 0.

``bin/serve`` is what the image runs and what ``.ci/run`` starts: migrate, then exec
gunicorn.  Here it serves a fresh SQLite database on 127.0.0.1 while eight threads request
tokens, and gets SIGTERM in the middle, as ``docker stop`` sends it.  gunicorn's master then
closes its copy of the listener, each sync worker finishes the request it holds, and the
master exits within ``graceful_timeout``.  A request a worker had taken must get its answer,
and so must a connection the kernel had queued on the listening socket: it would be reset
when the last copy of the socket closes, since gunicorn's sync workers stop calling accept()
on SIGTERM (gunicorn issue #3397).  Our worker (``authserver.workers.JsonErrorSyncWorker.drain``)
serves them: the last worker holding the socket has the kernel drop new connections, empties
the queue, and only then exits.  Those new connections are refused once the socket is closed
(a load balancer retries those elsewhere); they are counted and allowed.  A reset fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from tests.live import PROJECT, PYTHON, _free_port, manage, run_gunicorn, server_env

pytestmark = [pytest.mark.live, pytest.mark.chaos]

ENTRY_POINT = str(PROJECT / "bin" / "serve")
THREADS = 8
MAX_REQUESTS = 2000
MAX_SECONDS = 10.0
SIGTERM_AFTER = 200  # answered requests before the signal: well inside the load
GUNICORN_CONF = (PROJECT / "authserver" / "gunicorn.conf.py").read_text()
GRACEFUL_TIMEOUT = int(re.findall(r"^graceful_timeout = (\d+)$", GUNICORN_CONF, re.M)[0])


def _outcome(sent: requests.Response | requests.ConnectionError) -> str:
    """``"200"`` and the like for an answer; ``"refused"`` when no connection was made (the
    listener is closed); ``"reset"`` when the connection was made, then reset before any answer;
    anything else (a timeout, a connection closed without an answer) by its repr."""
    if isinstance(sent, requests.Response):
        return str(sent.status_code)
    cause = sent.args[0] if sent.args else None
    if isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError):
        return "refused"
    if isinstance(cause, ProtocolError) and isinstance(cause.args[-1], ConnectionResetError | BrokenPipeError):
        return "reset"
    return repr(sent)


def test_sigterm_mid_load_drains_every_accepted_request_and_exits_0(tmp_path: Path) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", issuer=base_url, BIND=f"127.0.0.1:{port}",
        # bin/serve runs the first python and gunicorn on PATH: this virtualenv's.
        PATH=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    outcomes: Counter[str] = Counter()
    answered = threading.Event()
    stop = threading.Event()
    lock = threading.Lock()

    with run_gunicorn(
        env, log=tmp_path / "serve.log", access_log=tmp_path / "access.log", command=(ENTRY_POINT,)
    ) as process:
        # bin/serve has migrated the database; the client is created beside the running server.
        credentials = json.loads(manage(env, "createclient", "svc", "--json"))
        auth = (credentials["client_id"], credentials["client_secret"])

        def load() -> None:
            while not stop.is_set():
                try:
                    sent: requests.Response | requests.ConnectionError = requests.post(
                        f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=10,
                    )
                except requests.ConnectionError as error:
                    sent = error
                outcome = _outcome(sent)
                with lock:
                    outcomes[outcome] += 1
                    if outcomes["200"] >= SIGTERM_AFTER:
                        answered.set()
                    if outcome == "refused" or sum(outcomes.values()) >= MAX_REQUESTS:
                        return

        threads = [threading.Thread(target=load, daemon=True) for _ in range(THREADS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        assert answered.wait(MAX_SECONDS / 2), f"not {SIGTERM_AFTER} tokens in {MAX_SECONDS / 2} s: {outcomes}"
        os.kill(process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        for thread in threads:
            thread.join(max(0.0, started + MAX_SECONDS - time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join(10)
        returncode = process.wait(timeout=GRACEFUL_TIMEOUT + 5)
        drained_in = time.monotonic() - signalled

    print(f"\n{dict(outcomes)}; exit {returncode} {drained_in:.2f} s after SIGTERM")
    logged = (tmp_path / "serve.log").read_text()
    wrong = {outcome: count for outcome, count in outcomes.items() if outcome not in ("200", "refused")}
    assert wrong == {}, f"answers other than 200, or failures other than refused: {dict(outcomes)}"
    assert outcomes["200"] >= SIGTERM_AFTER
    assert returncode == 0, logged
    assert drained_in < GRACEFUL_TIMEOUT
    assert "Handling signal: term" in logged and "Shutting down: Master" in logged
    # No worker was killed (the master sends SIGKILL only past graceful_timeout), so none
    # dropped a request it had accepted.
    assert "SIGKILL" not in logged and "WORKER TIMEOUT" not in logged, logged
    assert logged.count("Worker exiting") == int(env["WEB_CONCURRENCY"]), logged
