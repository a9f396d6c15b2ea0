"""gunicorn's sync worker, with its own error responses in JSON.

gunicorn answers a request it cannot parse (a request line or header field over its limits,
too many header fields, malformed HTTP) and an application that fails before sending
anything with an HTML page of its own, written by ``Worker.handle_error``.  This worker
writes the RFC 6749 §5.2 error body every other error of ours has instead, with
``Cache-Control: no-store`` (§5.1) and ``Connection: close`` (RFC 9112 §9.6: after a request
that could not be parsed the rest of the connection cannot be framed).

The description is chosen by the kind of error, never built from the request: gunicorn's
own messages quote the offending request line or header, which may carry a credential.
Its log lines do too, so this worker logs the kind of error and the client address only.

It also drains the listen backlog when the server stops (``drain``), which gunicorn's sync
worker does not (gunicorn issue #3397): see ``JsonErrorSyncWorker.run``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from ssl import SSLError
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.http.errors import (  # type: ignore[import-untyped]
    ChunkMissingTerminator,
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    InvalidSchemeHeaders,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.http.message import Request  # type: ignore[import-untyped]
from gunicorn.http.wsgi import Response, default_environ  # type: ignore[import-untyped]
from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]

from authserver.responses import NO_STORE

# RFC 9110 §15's reason phrases (Python 3.11's http.HTTPStatus still has RFC 2616's for 414).
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

# gunicorn raises LimitRequestHeaders for three limits, told apart by these fixed messages.
_HEADER_LIMITS = {
    "limit request headers fields": "The request has too many header fields.",
    "limit request headers fields size": "A request header field is too large.",
    "max buffer headers": "The request header section is too large.",
}


@dataclass(frozen=True)
class HttpError:
    status: int
    error: str
    description: str

    @property
    def reason(self) -> str:
        return REASONS.get(self.status, "Error")


SERVER_ERROR = HttpError(500, "server_error", "The server could not complete the request.")


def _invalid(status: int, description: str) -> HttpError:
    return HttpError(status, "invalid_request", description)


def http_error(exc: BaseException) -> HttpError:
    """The answer to ``exc``, raised while gunicorn read a request or ran the application.

    The statuses are gunicorn's but for two: a well-formed version other than HTTP/1.x gets
    505, the status RFC 9110 §15.6.6 names for a major version the server does not support
    (gunicorn answers 400, which stays for a malformed one: an invalid request-line, RFC 9112
    §3), and a parse error gunicorn does not list (``InvalidProxyHeader``) is 400, not 500.
    431 covers a single field too large and too many of them alike (RFC 6585 §5).
    """
    # The application's fault, though subclasses of the request-header errors.
    if isinstance(exc, (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem)):
        return SERVER_ERROR
    if isinstance(exc, LimitRequestLine):
        return _invalid(414, "The request line is too long.")
    if isinstance(exc, LimitRequestHeaders):
        return _invalid(431, _HEADER_LIMITS.get(exc.msg, "The request header fields are too large."))
    if isinstance(exc, InvalidHTTPVersion):
        # gunicorn passes the parsed (major, minor) when the version was well-formed.
        if isinstance(exc.version, tuple):
            return _invalid(505, "Only HTTP/1.0 and HTTP/1.1 are supported.")
        return _invalid(400, "The HTTP version is malformed.")
    if isinstance(exc, InvalidRequestMethod):
        return _invalid(400, "The request method is malformed.")
    if isinstance(exc, InvalidRequestLine):
        return _invalid(400, "The request line is malformed.")
    if isinstance(exc, (InvalidHeader, InvalidHeaderName, ObsoleteFolding, InvalidSchemeHeaders)):
        return _invalid(400, "A request header field is malformed.")
    if isinstance(exc, (InvalidChunkSize, ChunkMissingTerminator, InvalidChunkExtension)):
        return _invalid(400, "The chunked request body is malformed.")
    if isinstance(exc, UnsupportedTransferCoding):
        return _invalid(501, "The request's transfer coding is not supported.")
    if isinstance(exc, ExpectationFailed):
        return _invalid(417, "The request's expectation cannot be met.")
    if isinstance(exc, (ForbiddenProxyRequest, SSLError)):
        return _invalid(403, "The connection is not allowed.")
    # Any other error gunicorn's parser raises (PROXY protocol, h2c) is the request's.
    if isinstance(exc, ParseException):
        return _invalid(400, "The request is malformed.")
    return SERVER_ERROR


def error_response(error: HttpError) -> bytes:
    """The whole HTTP/1.1 response for ``error``: compact JSON, as ``authserver.responses`` renders."""
    body = json.dumps({"error": error.error, "error_description": error.description}, separators=(",", ":"))
    head = [
        f"HTTP/1.1 {error.status} {error.reason}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in NO_STORE.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode("ascii")


# Linux's SO_ATTACH_FILTER (asm-generic/socket.h) and a classic BPF program for a TCP
# listening socket, which sees each segment from its TCP header: drop a SYN without ACK (a new
# connection: the client retransmits it, and is refused once the socket is closed), keep every
# other segment, among them the ACKs that complete handshakes already under way.
SO_ATTACH_FILTER = 26
_REFUSE_NEW_CONNECTIONS = [
    (0x30, 0, 0, 13),  # ldb [13]: the TCP flags
    (0x54, 0, 0, 0x12),  # and #(SYN | ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: a new connection
    (0x06, 0, 0, 0),  # ret #0: drop it
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep the whole segment
]
# How long the last holder of a listener waits, once new connections are dropped, for the
# handshakes already under way to complete (one round trip: microseconds on loopback, a
# millisecond or so to a load balancer beside the node) before it closes the socket.
HANDSHAKE_GRACE = 0.1
# How often a worker waiting for its siblings to exit looks at which processes hold the listener.
POLL = 0.02


def refuse_new_connections(listener: socket.socket) -> bool:
    """Make the kernel drop new connections to ``listener`` (TCP on Linux); connections it has
    queued stay queued, for ``accept``.  ``shutdown(SHUT_RD)`` is no substitute: on a listening
    socket, Linux resets every queued connection.  False where the filter is not available."""
    if listener.family not in (socket.AF_INET, socket.AF_INET6) or listener.type != socket.SOCK_STREAM:
        return False
    program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in _REFUSE_NEW_CONNECTIONS))
    fprog = struct.pack("HL", len(_REFUSE_NEW_CONNECTIONS), ctypes.addressof(program))
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True  # the kernel copies the program: ``program`` may go


def _inode(listener: socket.socket) -> str:
    return f"socket:[{os.fstat(listener.fileno()).st_ino}]"


def holders(inodes: set[str], pids: Iterable[int | str] | None = None) -> set[int] | None:
    """The processes (among ``pids``, else all) with one of ``inodes`` open, as /proc shows
    them; None where /proc does not.  Processes it may not look into are not counted."""
    found: set[int] = set()
    try:
        candidates = list(pids) if pids is not None else [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in candidates:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # gone, a zombie, or not ours
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    found.add(int(pid))
                    break
            except OSError:
                continue
    return found


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class HeadWithBody:
    """The client socket as a response is written to it: the first ``sendall`` (gunicorn's
    header block) is held and sent together with the next (the first part of the body), so a
    response the application gives in one piece, as Django does, leaves in one ``send``
    instead of two.  On loopback each send costs the sender the receiver's TCP processing as
    well, about 25 µs under load (docs/performance.md, issue 17).  Anything else asked of the
    socket (``send`` for ``100 Continue``, ``sendfile``, ``shutdown``) first sends what is held,
    and ``flush`` sends it when the response ends without a body."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._held: bytes | None = None
        self._first = True

    def sendall(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = bytes(data)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._sock.sendall(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._sock.sendall(held)

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self._sock, name)


class JsonErrorSyncWorker(SyncWorker):
    """gunicorn's sync worker; ``handle_error`` answers with ``error_response``; when the whole
    server stops, the worker serves the connections still queued on the listener (``drain``);
    a response's header block leaves with its body (``HeadWithBody``)."""

    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        response_socket = HeadWithBody(client)
        try:
            super().handle_request(listener, req, response_socket, addr)
        finally:
            response_socket.flush()

    def run(self) -> None:
        super().run()
        if not self.alive:  # SIGTERM (or max_requests); not a parent that died
            self.drain(deadline=time.monotonic() + self.cfg.graceful_timeout * 0.9)

    def _accept_queued(self, deadline: float, limit: int | None = None) -> int:
        """Serve the connections queued on the listeners now (at most ``limit`` from each), as
        gunicorn's loop would; how many."""
        served = 0
        for listener in self.sockets:
            taken = 0
            while time.monotonic() < deadline and (limit is None or taken < limit):
                self.notify()
                try:
                    self.accept(listener)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    if e.errno != errno.ECONNABORTED:
                        self.log.debug("Drain: accept failed: %s", e)
                        break
                    continue
                served += 1
                taken += 1
        return served

    def _wait(self, seconds: float) -> None:
        try:
            select.select(self.sockets, [], [], max(0.0, seconds))
        except (OSError, ValueError):
            time.sleep(max(0.0, seconds))

    def drain(self, deadline: float) -> None:
        """Serve every connection the kernel queued on the listeners before they close.

        A connection queued (handshake done) but never accepted is reset when the last copy of
        the listening socket closes.  gunicorn's master closes its copy before it sends SIGTERM;
        the workers hold the others.  So: while the master (or another server, as after a USR2
        re-exec) still holds the socket, it serves the queue, and this worker just exits.
        Otherwise all the master's workers are stopping: each exits after the request it holds
        but the one with the lowest pid, which keeps accepting until it is the last holder,
        then has the kernel drop new connections (``refuse_new_connections``: those clients
        are refused once the socket is closed), serves what is left, the handshakes under way
        included, and exits: nothing can be queued behind it.  All within ``deadline``, before
        the master's graceful_timeout; past it the worker exits as gunicorn's would."""
        if not self.sockets:
            return
        try:
            inodes = {_inode(listener) for listener in self.sockets}
        except OSError:
            return
        try:
            os.listdir(f"/proc/{self.ppid}/fd")
        except OSError:
            return  # no /proc, or one that hides the master's sockets: no way to tell who listens
        if holders(inodes, [self.ppid]):
            return  # the master still listens: HUP, fewer workers, max_requests
        others = holders(inodes)
        if others is None:  # no /proc after all: serve what is queued, and go
            self._accept_queued(deadline)
            return
        me = os.getpid()
        others.discard(me)
        if any(pid < me or _parent(pid) != self.ppid for pid in others):
            return  # a stopping worker with a lower pid drains last, or another server serves
        # The others are workers of this master, stopping: none accepts again.  No process can
        # come to hold the sockets any more (the others do not fork), so only they are watched.
        while others:
            if time.monotonic() >= deadline:
                return
            if not self._accept_queued(deadline, limit=1):
                self._wait(POLL)
            others = holders(inodes, others) or set()
        # The last holder: no one else will ever accept from these sockets.
        filtered = [refuse_new_connections(listener) for listener in self.sockets]
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self._accept_queued(deadline):
                quiet_since = time.monotonic()
            elif not all(filtered) or time.monotonic() - quiet_since >= HANDSHAKE_GRACE:
                break
            else:
                self._wait(HANDSHAKE_GRACE / 5)
        self.log.info("Drained the listen backlog")

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        started = datetime.now()
        addr = addr or ("", -1)  # a unix socket has no peer address
        error = http_error(exc)
        if error.error == "invalid_request":  # the request's fault, 501 and 505 included
            self.log.warning("Invalid request from ip=%s: %s: %s", addr[0], type(exc).__name__, error.description)
        elif req is not None:
            # The path, never the query string, which may carry a credential.
            self.log.exception("Error handling request %s %s", req.method, req.path)
        else:
            self.log.exception("Error handling request (no request line read)")

        response = error_response(error)
        # InvalidHeader may name the request it was found in (InvalidRequestLine.req is a str).
        found_in = getattr(exc, "req", None)
        if req is None and isinstance(found_in, Request):
            req = found_in
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
            access = Response(req, client, self.cfg)
            access.status = f"{error.status} {error.reason}"
            access.response_length = len(response.partition(b"\r\n\r\n")[2])
            self.log.access(access, req, environ, datetime.now() - started)

        try:
            util.write_nonblock(client, response)
        except Exception:
            self.log.debug("Failed to send error message.")
