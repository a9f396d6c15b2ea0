"""Prometheus metrics of the OAuth endpoints, served by ``GET /metrics`` (tokens.endpoints.metrics).

- ``authserver_token_requests_total{endpoint, result}``: every token, introspection and
  revocation request, once; ``result`` is ``success`` or the ``error`` code of the JSON answer
  (RFC 6749 §5.2), e.g. ``invalid_client``, or ``temporarily_unavailable`` for a lockout (429)
  or an outage (503).
- ``authserver_token_request_duration_seconds{endpoint}``: how long the view took.
- ``authserver_client_authentication_failures_total{reason}``: every refused client
  authentication, by ``FailureReason``.

Every label value comes from a fixed set (``ENDPOINTS``, ``RESULTS``, ``FailureReason``): none
holds a client id, scope, address or anything else a caller chooses, so no request can create a
series, and none can put a secret in the output.

Two modes, as prometheus_client decides when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``:

- **Under gunicorn: multiprocess mode.**  ``authserver/gunicorn.conf.py`` names a fresh
  directory as gunicorn reads its configuration, which is before the master loads the app (it
  preloads it, and so imports this module, before any server hook runs) and so before any
  worker forks.  Each process keeps its values in mmap'ed files of its own there: a count is a
  write into shared memory, with no system call and no lock between processes.  A scrape, in
  whichever worker answers it, merges the files of every worker (``MultiProcessCollector``),
  those of workers gunicorn has since replaced included, so counts never go backwards.
- **Anywhere else** (tests, ``manage.py``, ``runserver``): the variable is unset and values live
  in this process, in ``REGISTRY``.

Which mode is on is read from the library (``values.ValueClass``), the one that stores the
values, so it cannot disagree with it.  Either way the metrics are registered in ``REGISTRY``,
a registry of our own rather than the library's global one: a scrape serves these metrics and
nothing else a library might register (the process collectors would describe only the one
worker that answered).
"""

from __future__ import annotations

import enum
import functools

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS: bool = values.ValueClass._multiprocess

# The text format every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# The URL names of the OAuth routes (tokens/urls.py).
ENDPOINTS = frozenset({"token", "introspect", "revoke"})
SUCCESS = "success"
# The ``error`` codes an OAuth endpoint can answer with: RFC 6749 §5.2, RFC 7009 §2.2.1,
# RFC 8707 §2, and §4.1.2.1's two for an unexpected failure and an outage.
RESULTS = frozenset({
    SUCCESS, "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "invalid_target", "unsupported_token_type",
    "server_error", "temporarily_unavailable",
})
# A label value outside its fixed set (a route or error code added without its name here).
OTHER = "other"


class FailureReason(enum.StrEnum):
    """Why a client authentication was refused, for operators (the caller only ever sees
    ``invalid_client``, or 429 when locked out)."""

    NO_CREDENTIALS = "no_credentials"
    MALFORMED_CREDENTIALS = "malformed_credentials"
    UNKNOWN_CLIENT = "unknown_client"
    WRONG_SECRET = "wrong_secret"
    DISABLED_CLIENT = "disabled_client"
    EXPIRED_OR_REVOKED_SECRET = "expired_or_revoked_secret"
    INVALID_ASSERTION = "invalid_assertion"
    REPLAYED_ASSERTION = "replayed_assertion"
    INVALID_CERTIFICATE = "invalid_certificate"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    LOCKED_OUT = "locked_out"
    OTHER = "other"


# _created samples exist only in one of the two modes (never in multiprocess files): served in
# neither, the output is the same whoever answers.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry()

TOKEN_REQUESTS = Counter(
    "authserver_token_requests",
    "Token, introspection and revocation requests, by endpoint and result (success or the JSON error code).",
    ("endpoint", "result"),
    registry=REGISTRY,
)
TOKEN_REQUEST_DURATION = Histogram(
    "authserver_token_request_duration_seconds",
    "Time the OAuth endpoint's view took to answer, by endpoint.",
    ("endpoint",),
    # A token takes about a millisecond of CPU: fine buckets there, coarse ones for trouble.
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
CLIENT_AUTHENTICATION_FAILURES = Counter(
    "authserver_client_authentication_failures",
    "Refused client authentications at the OAuth endpoints, by reason.",
    ("reason",),
    registry=REGISTRY,
)

# Every reason is served from the start, at 0: an alert on one needs no first failure.
_FAILURE_SERIES = {reason: CLIENT_AUTHENTICATION_FAILURES.labels(reason.value) for reason in FailureReason}


@functools.cache
def _request_series(endpoint: str, result: str) -> tuple[Counter, Histogram]:
    # Looked up once per (endpoint, result): ``labels()`` costs about as much as a count.
    return TOKEN_REQUESTS.labels(endpoint, result), TOKEN_REQUEST_DURATION.labels(endpoint)


def record_request(endpoint: str, result: str, seconds: float) -> None:
    """Count one OAuth request and the time it took; call once per request."""
    count, duration = _request_series(
        endpoint if endpoint in ENDPOINTS else OTHER, result if result in RESULTS else OTHER
    )
    count.inc()
    duration.observe(seconds)


def record_client_authentication_failure(reason: FailureReason) -> None:
    _FAILURE_SERIES[reason].inc()


@functools.cache
def _scrape_registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> bytes:
    """Every metric in the Prometheus text format (``CONTENT_TYPE``), summed over every
    worker process in multiprocess mode."""
    return generate_latest(_scrape_registry())
