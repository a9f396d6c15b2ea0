"""Health endpoints for load balancers."""

from __future__ import annotations

import json

from django.db import OperationalError


def test_healthz(http, db):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}


def test_readyz_when_ready(http, db):
    response = http.get("/readyz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ready", "checks": {"database": "ok", "signing_key": "ok"}}


def test_readyz_when_the_database_is_down(http, db, monkeypatch):
    from tokens import keys

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    class DownConnection:
        cursor = staticmethod(down)

    monkeypatch.setattr("authserver.health.connection", DownConnection())
    monkeypatch.setattr(keys, "_published_rows", down)
    keys._cache.__init__()  # a fresh process: no key set cached yet
    response = http.get("/readyz/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content) == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "signing_key": "unavailable"},
    }
    assert http.get("/healthz").status_code == 200


def test_health_endpoints_are_read_only(http, db):
    assert http.post("/healthz").status_code == 405
    assert http.post("/readyz").status_code == 405
