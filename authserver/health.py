"""Health endpoints for load balancers: ``/healthz`` (alive) and ``/readyz`` (able to serve)."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from authserver.responses import json_response
from tokens.errors import read_only
from tokens.keys import keyring

log = logging.getLogger("authserver.health")


@read_only
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is checked, so a database outage never restarts it."""
    return json_response({"status": "ok"})


@read_only
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready when the database answers and a signing key is loaded; else 503 with Retry-After."""
    checks = {"database": "ok", "signing_key": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        checks["database"] = "unavailable"
        log.warning("not ready: database unavailable (%s)", type(error).__name__)
    try:
        keyring()
    except DatabaseError:
        checks["signing_key"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return json_response(body, status=200) if ready else json_response(body, status=503, headers={"Retry-After": "5"})
