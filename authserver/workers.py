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
"""

from __future__ import annotations

import json
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


class JsonErrorSyncWorker(SyncWorker):
    """gunicorn's sync worker; ``handle_error`` answers with ``error_response``."""

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
