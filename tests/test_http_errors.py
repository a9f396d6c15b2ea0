"""What gunicorn itself answers, as production runs it (``authserver.workers``): a request it
refuses to parse, and an application that fails before answering, get a JSON error with the
right status, never gunicorn's HTML page, and neither the answer nor the log repeats a byte
of the request.  Raw bytes over a socket to 127.0.0.1, since no HTTP client sends these."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib import admin
from gunicorn.http.errors import (
    ConfigurationProblem,
    InvalidChunkSize,
    InvalidHTTPVersion,
    InvalidProxyLine,
    InvalidResponseHeader,
    LimitRequestHeaders,
)

from authserver.workers import http_error
from tests.live import (
    LiveServer,
    _free_port,
    fresh_postgres_database,
    manage,
    run_gunicorn,
    server_env,
)

# Stands for a credential a caller sent: it must come back in no answer and no log line.
MARKER = "ascs_leakcheck7Hq2"
HOST = b"Host: 127.0.0.1\r\n"


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A migrated database with one client, and the environment of the servers using it."""
    tmp = tmp_path_factory.mktemp("http_errors")
    test_url = os.environ.get("DATABASE_URL", "")
    if test_url.startswith("postgres"):
        with fresh_postgres_database(test_url, prefix="authserver_http_errors") as url:
            yield _deployment(url), tmp
    else:
        yield _deployment(f"sqlite:///{tmp / 'db.sqlite3'}"), tmp


def _deployment(database_url: str) -> dict[str, str]:
    env = server_env(database_url=database_url, issuer="http://127.0.0.1")
    manage(env, "migrate", "--noinput")
    credentials = json.loads(manage(env, "createclient", "svc", "--json"))
    return {**env, "TEST_CLIENT_ID": credentials["client_id"], "TEST_CLIENT_SECRET": credentials["client_secret"]}


@pytest.fixture(scope="module")
def server(deployment: tuple[dict[str, str], Path]) -> Iterator[LiveServer]:
    """gunicorn with ``authserver/gunicorn.conf.py`` and ``authserver.wsgi``, as in production."""
    base_env, tmp = deployment
    port = _free_port()
    env = {**base_env, "BIND": f"127.0.0.1:{port}"}
    access_log, log = tmp / "access.log", tmp / "gunicorn.log"
    with run_gunicorn(env, log=log, access_log=access_log) as process:
        yield LiveServer(
            base_url=f"http://127.0.0.1:{port}", env=env, client_id=env["TEST_CLIENT_ID"],
            client_secret=env["TEST_CLIENT_SECRET"], access_log=access_log, process=process, log=log,
        )


def crashing_application() -> Callable[..., Iterable[bytes]]:
    """``authserver.wsgi``, but raising on ``/crash`` before any response starts: what
    gunicorn answers itself when an application fails (gunicorn calls this factory)."""
    from authserver.wsgi import application

    def crash_on_request(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/crash":
            raise RuntimeError("the application failed")
        return application(environ, start_response)

    return crash_on_request


@pytest.fixture(scope="module")
def crashing_server(deployment: tuple[dict[str, str], Path]) -> Iterator[tuple[int, Path]]:
    """Our gunicorn configuration serving ``crashing_application``: (port, log)."""
    base_env, tmp = deployment
    port = _free_port()
    log = tmp / "crashing.log"
    env = {**base_env, "BIND": f"127.0.0.1:{port}"}
    with run_gunicorn(env, log=log, access_log=tmp / "crashing-access.log",
                      app="tests.test_http_errors:crashing_application()"):
        yield port, log


# --- a raw HTTP/1.1 exchange -----------------------------------------------------------------


def exchange(port: int, raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Send ``raw``, read until the server closes: (status line, sorted headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = sorted((name.lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines))
    return status_line, headers, body


def json_error_headers(body: bytes) -> list[tuple[str, str]]:
    return [
        ("cache-control", "no-store"),
        ("connection", "close"),
        ("content-length", str(len(body))),
        ("content-type", "application/json"),
        ("pragma", "no-cache"),
    ]


def port_of(server: LiveServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


# --- what gunicorn refuses to parse ----------------------------------------------------------

MALFORMED_LINE = "The request line is malformed."
MALFORMED_HEADER = "A request header field is malformed."
REFUSED = [
    pytest.param(
        b"GET /oauth/token?client_secret=" + MARKER.encode() + b"a" * 20000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        "414 URI Too Long", "The request line is too long.", "LimitRequestLine", id="20 KB request line",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"X-Big: " + MARKER.encode() + b"a" * 20000 + b"\r\n\r\n",
        "431 Request Header Fields Too Large", "A request header field is too large.", "LimitRequestHeaders",
        id="20 KB header",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST
        + b"".join(b"X-Header-%d: %s\r\n" % (i, MARKER.encode()) for i in range(200)) + b"\r\n",
        "431 Request Header Fields Too Large", "The request has too many header fields.", "LimitRequestHeaders",
        id="200 headers",
    ),
    pytest.param(b"GARBAGE\r\n\r\n", "400 Bad Request", MALFORMED_LINE, "InvalidRequestLine", id="garbage"),
    pytest.param(
        b"GET /oauth/token?" + MARKER.encode() + b"\nHost: 127.0.0.1\n\n", "400 Bad Request", MALFORMED_LINE,
        "InvalidRequestLine", id="bare LF",
    ),
    pytest.param(
        b"get /oauth/token?" + MARKER.encode() + b" HTTP/1.1\r\n" + HOST + b"\r\n", "400 Bad Request",
        "The request method is malformed.", "InvalidRequestMethod", id="lowercase method",
    ),
    pytest.param(
        b"GET /oauth/token?" + MARKER.encode() + b" HTTP/1.x\r\n" + HOST + b"\r\n", "400 Bad Request",
        "The HTTP version is malformed.", "InvalidHTTPVersion", id="malformed HTTP version",
    ),
    pytest.param(
        b"GET /oauth/token?" + MARKER.encode() + b" HTTP/2.0\r\n" + HOST + b"\r\n",
        "505 HTTP Version Not Supported", "Only HTTP/1.0 and HTTP/1.1 are supported.", "InvalidHTTPVersion",
        id="HTTP/2.0 as text",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"Authorization Bearer " + MARKER.encode() + b"\r\n\r\n",
        "400 Bad Request", MALFORMED_HEADER, "InvalidHeader", id="header without colon",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"X-Folded: a\r\n " + MARKER.encode() + b"\r\n\r\n",
        "400 Bad Request", MALFORMED_HEADER, "ObsoleteFolding", id="folded header",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"Content-Length: " + MARKER.encode() + b"\r\n\r\n",
        "400 Bad Request", MALFORMED_HEADER, "InvalidHeader", id="Content-Length not a number",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: " + MARKER.encode() + b"\r\n\r\n",
        "501 Not Implemented", "The request's transfer coding is not supported.", "UnsupportedTransferCoding",
        id="unknown transfer coding",
    ),
    pytest.param(
        b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"Expect: " + MARKER.encode() + b"\r\n\r\n",
        "417 Expectation Failed", "The request's expectation cannot be met.", "ExpectationFailed",
        id="unknown expectation",
    ),
]


@pytest.mark.live
@pytest.mark.parametrize(("raw", "status", "description", "kind"), REFUSED)
def test_what_gunicorn_refuses_is_a_json_error(
    server: LiveServer, raw: bytes, status: str, description: str, kind: str,
) -> None:
    status_line, headers, body = exchange(port_of(server), raw)

    assert status_line == f"HTTP/1.1 {status}"
    assert json.loads(body) == {"error": "invalid_request", "error_description": description}
    assert headers == json_error_headers(body)
    # The log names the kind of error and the address, never what was sent.
    assert server.log is not None
    logged = server.log.read_text()
    assert f"Invalid request from ip=127.0.0.1: {kind}: {description}" in logged
    assert MARKER not in logged and "GARBAGE" not in logged and "aaaa" not in logged


@pytest.mark.live
def test_a_refused_request_gunicorn_had_read_is_in_the_access_log(server: LiveServer) -> None:
    raw = b"POST /oauth/token HTTP/1.1\r\n" + HOST + b"X-Test-Request: 4242\r\nContent-Length: x\r\n\r\n"
    status_line, _, _ = exchange(port_of(server), raw)

    assert status_line == "HTTP/1.1 400 Bad Request"
    deadline = time.monotonic() + 5
    while not server.access_log.exists() or " 4242 400" not in server.access_log.read_text():
        assert time.monotonic() < deadline, "no access log line for the refused request"
        time.sleep(0.05)


@pytest.mark.live
def test_our_worker_serves_well_formed_requests_as_before(server: LiveServer) -> None:
    response = requests.post(
        f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
        auth=(server.client_id, server.client_secret), timeout=10,
    )

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert server.log is not None
    assert "Using worker: authserver.workers.JsonErrorSyncWorker" in server.log.read_text()


@pytest.mark.live
def test_our_worker_sends_whole_responses_with_a_body_without_one_and_from_a_file(server: LiveServer) -> None:
    # A response's header block leaves with its body (authserver.workers.HeadWithBody).
    token = requests.post(f"{server.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(server.client_id, server.client_secret), timeout=10)
    head = requests.head(f"{server.base_url}/healthz", timeout=10)
    static = requests.get(f"{server.base_url}/static/admin/css/base.css", timeout=10)

    assert token.status_code == 200 and int(token.headers["Content-Length"]) == len(token.content)
    assert token.json()["token_type"] == "Bearer"
    assert head.status_code == 200 and head.content == b""
    assert static.status_code == 200
    assert static.content == (Path(admin.__file__).parent / "static" / "admin" / "css" / "base.css").read_bytes()
    # The log lines as before their records got cheaper (authserver.logging.configure):
    # gunicorn's with the worker's pid, ours with the time to the millisecond.
    assert server.log is not None
    logged = server.log.read_text()
    assert re.search(r"^\[[^]]+\] \[\d+\] \[INFO\] Booting worker with pid: \d+$", logged, re.MULTILINE)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO authserver.tokens token issued client_id=",
                     logged, re.MULTILINE)


@pytest.mark.live
def test_an_application_failure_is_json_server_error(crashing_server: tuple[int, Path]) -> None:
    port, log = crashing_server
    raw = b"GET /crash?client_secret=" + MARKER.encode() + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    status_line, headers, body = exchange(port, raw)

    assert status_line == "HTTP/1.1 500 Internal Server Error"
    assert json.loads(body) == {
        "error": "server_error", "error_description": "The server could not complete the request.",
    }
    assert headers == json_error_headers(body)
    logged = log.read_text()
    assert "Error handling request GET /crash" in logged and "RuntimeError: the application failed" in logged
    assert MARKER not in logged


# --- the answer to each error gunicorn raises, without a server ------------------------------


@pytest.mark.parametrize(("error", "status", "code", "description"), [
    (LimitRequestHeaders("max buffer headers"), 431, "invalid_request", "The request header section is too large."),
    (LimitRequestHeaders("from gunicorn_h1c"), 431, "invalid_request", "The request header fields are too large."),
    (InvalidHTTPVersion((0, 9)), 505, "invalid_request", "Only HTTP/1.0 and HTTP/1.1 are supported."),
    (InvalidChunkSize(b"zz"), 400, "invalid_request", "The chunked request body is malformed."),
    (InvalidProxyLine("PROXY x"), 400, "invalid_request", "The request is malformed."),
    (InvalidResponseHeader("X-Bad"), 500, "server_error", "The server could not complete the request."),
    (ConfigurationProblem("x"), 500, "server_error", "The server could not complete the request."),
    (RuntimeError("x"), 500, "server_error", "The server could not complete the request."),
    (SystemExit(1), 500, "server_error", "The server could not complete the request."),  # a worker timeout
])
def test_http_error(error: BaseException, status: int, code: str, description: str) -> None:
    answer = http_error(error)

    assert (answer.status, answer.error, answer.description) == (status, code, description)
