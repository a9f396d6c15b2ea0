"""The access logger builds only the atoms its format names, and every line reads as gunicorn's.

Real gunicorn objects throughout: the request parsed by gunicorn's parser from raw bytes, the
environ and response made by ``gunicorn.http.wsgi.create``, the response written to a socket.
"""

from __future__ import annotations

import ast
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gunicorn import glogging  # type: ignore[import-untyped]
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.http import wsgi  # type: ignore[import-untyped]
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]

from authserver.accesslog import AccessLogger, format_atoms

ROOT = Path(__file__).resolve().parent.parent
OURS = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
EVERY_ATOM = " ".join(f"%({name})s" for name in "hlrsmUqHbBfaTDMLp")
REQUEST = (
    b"POST /oauth/token?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\n"
    b'Referer: http://ref.example/"quoted"\r\nX-Test-Request: 4242\r\nx-repeated: one\r\nX-Repeated: two\r\n'
    b"Content-Length: 9\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=b&c=def"
)
FORMATS = [
    OURS,
    EVERY_ATOM,
    # tests/live.py's, and header, response-header and environ atoms in any case, absent ones too.
    "%(p)s %({x-test-request}i)s %(s)s",
    "%({X-Test-Request}i)s %({x-repeated}i)s %({x-absent}i)s %({content-type}o)s %({X-Out}o)s %({remote_addr}e)s",
    "%(h)s %(h)s %%(literal)s",
    # Atoms built only by gunicorn's own atoms(): the Basic user, the time.
    '%(h)s %(u)s %(t)s "%(r)s"',
]


@pytest.fixture
def exchange() -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """(response, request, environ) of one request gunicorn parsed and answered."""
    server, peer = socket.socketpair()
    cfg = Config()
    request = next(RequestParser(cfg, iter([REQUEST]), ("127.0.0.1", 53124)))
    response, environ = wsgi.create(request, server, ("127.0.0.1", 53124), ("127.0.0.1", 8000), cfg)
    response.start_response("401 Unauthorized", [("Content-Type", "application/json"), ("X-Out", 'a "b"')])
    response.write(b'{"error":"invalid_client"}')
    yield response, request, environ
    server.close()
    peer.close()


def line(logger_class: type[glogging.Logger], access_log_format: str, exchange: tuple[Any, Any, dict[str, Any]]) -> str:
    """The message ``logger_class``'s ``access`` logs: its format applied to its atoms, as logging does."""
    cfg = Config()
    cfg.set("access_log_format", access_log_format)
    logger = logger_class(cfg)
    response, request, environ = exchange
    atoms = logger.atoms(response, request, environ, timedelta(seconds=1, microseconds=234567))
    return str(access_log_format % logger.atoms_wrapper_class(atoms))


@pytest.mark.parametrize("access_log_format", FORMATS)
def test_every_line_reads_as_gunicorns(access_log_format: str, exchange: tuple[Any, Any, dict[str, Any]]) -> None:
    ours = line(AccessLogger, access_log_format, exchange)

    assert ours == line(glogging.Logger, access_log_format, exchange)
    assert "%(" not in ours.replace("%(literal)s", "")


def test_our_format_gets_its_seven_atoms_and_nothing_else(exchange: tuple[Any, Any, dict[str, Any]]) -> None:
    cfg = Config()
    cfg.set("access_log_format", OURS)
    response, request, environ = exchange

    atoms = AccessLogger(cfg).atoms(response, request, environ, timedelta(milliseconds=3))

    assert atoms == {"h": "127.0.0.1", "m": "POST", "U": "/oauth/token", "H": "HTTP/1.1", "s": "401",
                     "b": "26", "M": 3}
    assert line(AccessLogger, OURS, exchange) == '127.0.0.1 "POST /oauth/token HTTP/1.1" 401 26 1234ms'


def test_a_format_naming_an_atom_built_only_by_gunicorn_gets_gunicorns_atoms() -> None:
    assert format_atoms(OURS) == ("h", "m", "U", "H", "s", "b", "M")
    assert format_atoms("%({x-test-request}i)s %(s)s") == ("{x-test-request}i", "s")
    assert format_atoms('%(h)s %(u)s') is None
    assert format_atoms("%(t)s") is None
    assert format_atoms("%({x}I)s") is None  # gunicorn lower-cases it: left to gunicorn


def test_the_server_configuration_names_this_logger() -> None:
    # Read, not run: running gunicorn.conf.py would make this process a metrics directory.
    assigned = {
        node.targets[0].id: node.value.value
        for node in ast.parse((ROOT / "authserver" / "gunicorn.conf.py").read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    cfg = Config()
    cfg.set("logger_class", assigned["logger_class"])

    assert cfg.logger_class is AccessLogger
    assert assigned["access_log_format"] == OURS
