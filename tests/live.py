"""Real gunicorn servers for tests that need several worker processes, or several nodes."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

ACCESS_LINE = re.compile(r"^<(\d+)> (\d+) (\d{3})$")
# The access log format adds the worker's pid and our request number, so a test
# knows which worker served each request (send the number as X-Test-Request).
ACCESS_LOG_FORMAT = "%(p)s %({x-test-request}i)s %(s)s"
# Variables of the suite's own environment that would change how a server behaves.
_NOT_INHERITED = {
    "DEBUG", "ACCESS_TOKEN_TTL", "SIGNING_ALG", "SIGNING_KEY_ENCRYPTION_KEY", "ALLOWED_HOSTS",
    "CACHE_URL", "REDIS_URL", "TRUSTED_PROXIES", "FAILED_AUTH_RATE_PER_IP", "FAILED_AUTH_RATE_PER_CLIENT",
}
# The machine's own services, which the multi-node and chaos tests always use.
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = ("127.0.0.1", 6379)


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    env: dict[str, str]
    client_id: str
    client_secret: str
    access_log: Path
    process: subprocess.Popen[bytes]
    name: str = "gunicorn"
    log: Path | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(url: str, *, patience: float) -> Any:
    """An autocommit connection, retried for ``patience`` seconds: other runs sharing the
    server may be restarting it (chaos tests) for a few seconds."""
    import psycopg

    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "authserver_live") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url``; dropped afterwards."""
    from psycopg import sql

    parts = urlsplit(server_url)
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _connect(admin_url, patience=15) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(("postgres", parts.netloc, f"/{name}", "", ""))
    finally:
        with _connect(admin_url, patience=30) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def require_local_postgres() -> None:
    """Skip, with the reason, when the machine's PostgreSQL is not there (after 15 s)."""
    import psycopg

    try:
        _connect(LOCAL_POSTGRES.replace("postgres://", "postgresql://"), patience=15).close()
    except psycopg.OperationalError as error:
        pytest.skip(f"needs PostgreSQL at 127.0.0.1:5432 (user postgres): {error}")


def postmaster_started() -> object:
    """When the local PostgreSQL last started: a change means someone restarted it."""
    with _connect(LOCAL_POSTGRES.replace("postgres://", "postgresql://"), patience=15) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]  # type: ignore[index]


@contextmanager
def services_to_ourselves(timeout: float = 300) -> Iterator[None]:
    """Hold a machine-wide lock while a test stops the local PostgreSQL or Redis, or measures
    against them: other runs of these tests on this machine wait their turn instead of
    restarting a service under our feet."""
    import fcntl

    with open(Path("/tmp") / "authserver-tests-services.lock", "a") as lock:  # noqa: S108 (machine-wide on purpose)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"another run held the services lock for {timeout:.0f} s"
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def require_local_redis() -> None:
    """Skip, with the reason, when the machine's Redis is not there."""
    try:
        socket.create_connection(LOCAL_REDIS, timeout=2).close()
    except OSError as error:
        pytest.skip(f"needs Redis at 127.0.0.1:6379 (several nodes share rate limits through it): {error}")


@pytest.fixture
def gunicorn_database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite in ``tmp_path``, or a fresh PostgreSQL database when the suite runs on PostgreSQL."""
    test_url = os.environ.get("DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    with fresh_postgres_database(test_url) as url:
        yield url


def server_env(*, database_url: str, issuer: str, **settings: str) -> dict[str, str]:
    """A production-like environment (``DEBUG`` off, fresh keys) shared by every node of one
    deployment; ``settings`` override or add variables."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    env.update(
        WEB_CONCURRENCY="2",
        SECRET_KEY=secrets.token_urlsafe(38)[:50],
        SECRET_HASH_KEY=secrets.token_hex(32),
        ISSUER=issuer,
        SIGNING_KEY_REFRESH="1s",
        DATABASE_URL=database_url,
    )
    env.update(settings)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py ARGS`` with ``env``; return its stdout (kept in memory: it may hold a secret)."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def run_gunicorn(
    env: dict[str, str], *, log: Path, access_log: Path, app: str = "authserver.wsgi",
    command: tuple[str, ...] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn as in production (serving ``app``), on ``env["BIND"]``, until the block ends; its
    output goes to ``log``.  ``command``, if given, runs instead and must exec gunicorn on that
    ``BIND`` (``bin/serve``, the container's entry point); the access log then has production's format."""
    env = {**env, "ACCESS_LOG": str(access_log)}
    base_url = f"http://{env['BIND']}"
    with log.open("wb") as server_log:
        process = subprocess.Popen(
            list(command) or [
                GUNICORN, "-c", "authserver/gunicorn.conf.py", "--access-logformat", ACCESS_LOG_FORMAT, app,
            ],
            cwd=PROJECT, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not start within 15 s"
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def gunicorn_server(tmp_path: Path, gunicorn_database_url: str) -> Iterator[LiveServer]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(database_url=gunicorn_database_url, issuer=base_url, BIND=f"127.0.0.1:{port}")
    manage(env, "migrate", "--noinput")
    credentials = json.loads(manage(env, "createclient", "svc", "--json"))
    access_log = tmp_path / "access.log"
    with run_gunicorn(env, log=tmp_path / "gunicorn.log", access_log=access_log) as process:
        yield LiveServer(
            base_url=base_url, env={**env, "ACCESS_LOG": str(access_log)}, client_id=credentials["client_id"],
            client_secret=credentials["client_secret"], access_log=access_log, process=process,
            log=tmp_path / "gunicorn.log",
        )


@contextmanager
def live_nodes(
    log_dir: Path, *, database_url: str, count: int, createclient: tuple[str, ...] = ("svc",), **settings: str,
) -> Iterator[list[LiveServer]]:
    """``count`` gunicorn servers of one deployment: one database, one issuer, the same keys
    (and whatever ``settings`` add, e.g. ``REDIS_URL``), each on its own port, as behind a
    load balancer.  Migrates, creates one client (``createclient`` arguments), and logs each
    node to ``log_dir/node-X.log`` and ``log_dir/node-X-access.log``."""
    issuer = settings.pop("ISSUER", "https://auth.test")
    env = server_env(database_url=database_url, issuer=issuer, **settings)
    manage(env, "migrate", "--noinput")
    credentials = json.loads(manage(env, "createclient", *createclient, "--json"))
    with ExitStack() as stack:
        nodes = []
        for index in range(count):
            name = f"node-{chr(ord('a') + index)}"
            port = _free_port()
            node_env = {**env, "BIND": f"127.0.0.1:{port}"}
            access_log, log = log_dir / f"{name}-access.log", log_dir / f"{name}.log"
            process = stack.enter_context(run_gunicorn(node_env, log=log, access_log=access_log))
            nodes.append(LiveServer(
                base_url=f"http://127.0.0.1:{port}", env={**node_env, "ACCESS_LOG": str(access_log)},
                client_id=credentials["client_id"], client_secret=credentials.get("client_secret", ""),
                access_log=access_log, process=process, name=name, log=log,
            ))
        yield nodes


def _served_by(server: LiveServer) -> dict[int, int]:
    """Request number -> pid of the worker that served it, from the access log."""
    if not server.access_log.exists():
        return {}
    served = {}
    for line in server.access_log.read_text().splitlines():
        match = ACCESS_LINE.match(line)
        if match:
            served[int(match[2])] = int(match[1])
    return served


def _wait_for_log(server: LiveServer, numbers: Callable[[], set[int]]) -> dict[int, int]:
    """Workers write the access line just after the response: wait (at most 5 s) for them."""
    deadline = time.monotonic() + 5
    while not numbers() <= set(served := _served_by(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return served


# --- numbered requests, and which worker answered them --------------------------------------

_request_numbers = itertools.count(1)


@dataclass(frozen=True)
class Call:
    number: int  # sent as X-Test-Request: the server's access log names the worker that answered
    at: float  # when the answer arrived (time.monotonic)
    response: requests.Response


def call(server: LiveServer, path: str, *, method: str = "POST", **kwargs: Any) -> Call:
    """One request to ``server``, numbered so that its access log names the worker that answered."""
    number = next(_request_numbers)
    headers = {**kwargs.pop("headers", {}), "X-Test-Request": str(number)}
    kwargs.setdefault("timeout", 10)
    response = requests.request(method, f"{server.base_url}{path}", headers=headers, **kwargs)
    return Call(number, time.monotonic(), response)


def served_by(server: LiveServer, calls: list[Call]) -> dict[int, int]:
    """Request number -> pid of the worker of ``server`` that answered it, in the access log's order."""
    return _wait_for_log(server, lambda: {c.number for c in calls})


def by_worker(server: LiveServer, calls: list[Call]) -> dict[int, list[Call]]:
    """The ``calls`` each worker answered, in the order it served them: the order of its access
    lines (a sync worker serves one request at a time and logs it before accepting the next).
    The order answers arrived in may differ when several were sent at once."""
    numbered = {c.number: c for c in calls}
    workers: dict[int, list[Call]] = {}
    for number, pid in served_by(server, calls).items():
        if number in numbered:
            workers.setdefault(pid, []).append(numbered[number])
    return workers


def batch(send: Callable[[], Call], count: int = 8) -> list[Call]:
    """``count`` requests at once, in the order answered.  Concurrent, because one after the
    other may all go to one worker: on a busy machine the sync worker that just answered
    tends to win the next accept() (hundreds in a row were seen)."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return sorted(pool.map(lambda _: send(), range(count)), key=lambda c: c.at)


def on_every_worker(
    server: LiveServer, send: Callable[[], Call], *, until: Callable[[Call], bool] | None = None,
    what: str = "answered", workers: int = 2, at_once: int = 8, rounds: int = 40, seconds: float = 60,
) -> list[Call]:
    """Send ``batch``es of ``at_once`` requests until each of the ``workers`` worker processes of
    ``server`` has answered one (one for which ``until`` holds, if given); fail after ``rounds``
    batches or ``seconds``.  Returns every call, in the order answered."""
    calls: list[Call] = []
    started = time.monotonic()
    for _ in range(rounds):
        calls += batch(send, at_once)
        served = served_by(server, calls)
        done = {served[c.number] for c in calls if c.number in served and (until is None or until(c))}
        if len(done) >= workers:
            return calls
        if time.monotonic() - started > seconds:
            break
    pytest.fail(
        f"{server.name}: after {len(calls)} requests ({len(calls) // at_once} batches of {at_once}, "
        f"{time.monotonic() - started:.1f} s) only {len(done)} of {workers} workers {what} "
        f"(workers {sorted(done)}; all that answered: {sorted(set(served.values()))})"
    )
