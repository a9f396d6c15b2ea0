"""Our worker sends a response's header block with its body: one send for a Django response.

gunicorn's own ``Response`` writes through ``HeadWithBody`` to a real socket pair; the peer
must read exactly the bytes gunicorn writes without it, and the sends are counted on the way.
"""

from __future__ import annotations

import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.http import wsgi  # type: ignore[import-untyped]
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]

from authserver.workers import HeadWithBody

POST = b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\na=b"
HEAD = b"HEAD /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b'{"access_token":"eyJ","token_type":"Bearer","expires_in":300}'
JSON_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


class CountingSocket:
    """A real socket that records what each ``sendall`` and ``send`` carried."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))
        self.sock.sendall(data)

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data))
        return self.sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


Respond = Callable[[Any], None]


def undated(response: bytes) -> bytes:
    """``response`` without its Date field, which may move on between two writes."""
    return re.sub(rb"\r\nDate: [^\r]*", b"", response, count=1)


@pytest.fixture
def written() -> Iterator[Callable[[bytes, Respond, bool], tuple[bytes, list[bytes]]]]:
    """``written(request, respond, coalesce)``: the bytes the peer read and the sends made when
    gunicorn's Response for ``request`` was written by ``respond``, through HeadWithBody or not."""
    pairs: list[tuple[socket.socket, socket.socket]] = []

    def write(request: bytes, respond: Respond, coalesce: bool) -> tuple[bytes, list[bytes]]:
        server, peer = socket.socketpair()
        pairs.append((server, peer))
        counted = CountingSocket(server)
        sock: Any = HeadWithBody(counted) if coalesce else counted  # type: ignore[arg-type]
        cfg = Config()
        parsed = next(RequestParser(cfg, iter([request]), ("127.0.0.1", 53124)))
        response, _ = wsgi.create(parsed, sock, ("127.0.0.1", 53124), ("127.0.0.1", 8000), cfg)
        response.force_close()
        respond(response)
        response.close()
        if coalesce:
            sock.flush()
        server.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := peer.recv(65536):
            received += chunk
        return received, counted.sends

    yield write
    for server, peer in pairs:
        server.close()
        peer.close()


def django_response(response: Any) -> None:
    response.start_response("200 OK", JSON_HEADERS)
    response.write(BODY)


def no_body(response: Any) -> None:
    response.start_response("204 No Content", [])


def chunked(response: Any) -> None:  # no Content-Length: HTTP/1.1 chunked, like the trivial view's
    response.start_response("200 OK", [("Content-Type", "application/json")])
    response.write(BODY[:20])
    response.write(BODY[20:])


def head(response: Any) -> None:
    response.start_response("200 OK", JSON_HEADERS)
    response.write(BODY)


@pytest.mark.parametrize(("request_bytes", "respond", "sends", "sends_before"), [
    (POST, django_response, 1, 2),
    (POST, no_body, 1, 1),
    (POST, chunked, 3, 4),
    (HEAD, head, 1, 1),
])
def test_the_peer_reads_what_gunicorn_writes_in_fewer_sends(
    written: Callable[[bytes, Respond, bool], tuple[bytes, list[bytes]]],
    request_bytes: bytes, respond: Respond, sends: int, sends_before: int,
) -> None:
    coalesced, coalesced_sends = written(request_bytes, respond, True)
    plain, plain_sends = written(request_bytes, respond, False)

    assert undated(coalesced) == undated(plain)
    assert coalesced.startswith(b"HTTP/1.1 ")
    assert (len(coalesced_sends), len(plain_sends)) == (sends, sends_before)
    assert b"".join(coalesced_sends) == coalesced


def test_a_django_response_leaves_in_one_send_holding_head_and_body(
    written: Callable[[bytes, Respond, bool], tuple[bytes, list[bytes]]],
) -> None:
    _, sends = written(POST, django_response, True)

    assert len(sends) == 1
    head_block, _, body = sends[0].partition(b"\r\n\r\n")
    assert head_block.startswith(b"HTTP/1.1 200 OK\r\n") and f"Content-Length: {len(BODY)}".encode() in head_block
    assert body == BODY


def test_anything_else_asked_of_the_socket_sends_what_is_held_first() -> None:
    server, peer = socket.socketpair()
    with server, peer:
        sock = HeadWithBody(server)
        sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)  # held
        sock.send(b"then this")  # e.g. a write gunicorn makes with send
        assert peer.recv(100) == b"HTTP/1.1 200 OK\r\n\r\nthen this"
        sock.sendall(b"and the rest")
        assert peer.recv(100) == b"and the rest"


def test_a_file_response_sends_its_head_before_the_file() -> None:
    server, peer = socket.socketpair()
    with server, peer, tempfile.TemporaryFile() as file:
        file.write(b"file content")
        file.seek(0)
        sock = HeadWithBody(server)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
        sock.sendfile(file)
        server.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := peer.recv(100):
            received += chunk
    assert received == b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nfile content"
