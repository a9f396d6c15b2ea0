"""A real gunicorn server for tests that need several worker processes."""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

ACCESS_LINE = re.compile(r"^<(\d+)> (\d+) (\d{3})$")


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    env: dict[str, str]
    client_id: str
    client_secret: str
    access_log: Path
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn_database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite in ``tmp_path``, or a fresh PostgreSQL database when the suite runs on PostgreSQL."""
    test_url = os.environ.get("DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    parts = urlsplit(test_url)
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    name = f"authserver_live_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def gunicorn_server(tmp_path: Path, gunicorn_database_url: str) -> Iterator[LiveServer]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        name: value for name, value in os.environ.items()
        if name not in {"DEBUG", "ACCESS_TOKEN_TTL", "SIGNING_ALG", "SIGNING_KEY_ENCRYPTION_KEY", "ALLOWED_HOSTS"}
    }
    env.update(
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        SECRET_KEY=secrets.token_urlsafe(38)[:50],
        SECRET_HASH_KEY=secrets.token_hex(32),
        ISSUER=base_url,
        SIGNING_KEY_REFRESH="1s",
        DATABASE_URL=gunicorn_database_url,
        ACCESS_LOG=str(tmp_path / "access.log"),
    )
    for command in (["migrate", "--noinput"], ["createclient", "svc", "--json"]):
        done = subprocess.run(
            [PYTHON, "manage.py", *command], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
    credentials = json.loads(done.stdout)

    server_log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        # The access log format adds the worker's pid and our request number, so the
        # test knows which worker signed each token.
        [GUNICORN, "-c", "authserver/gunicorn.conf.py",
         "--access-logformat", "%(p)s %({x-test-request}i)s %(s)s", "authserver.wsgi"],
        cwd=PROJECT, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start within 15 s"
            time.sleep(0.1)
        yield LiveServer(
            base_url=base_url, env=env, client_id=credentials["client_id"],
            client_secret=credentials["client_secret"], access_log=tmp_path / "access.log", process=process,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server_log.close()


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
