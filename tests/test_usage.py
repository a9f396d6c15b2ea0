"""Per-client usage (``clients.usage``): counted in memory, written after responses at most once a
minute per process and when a worker stops, read through ``GET /client/<id>/usage``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients import usage
from clients.models import ClientUsage
from tests.conftest import basic, post_token
from tests.live import live_nodes

GRANT = {"grant_type": "client_credentials"}
WRONG = "ascs_" + "A" * 54


@pytest.fixture
def reader(make_client, http):
    _, secret = make_client(client_id="ops-bot", allowed_scopes=["clients:read"])
    token = post_token(http, GRANT, authorization=basic("ops-bot", secret)).json()["access_token"]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def this_hour() -> str:
    now = datetime.now(tz=UTC)
    return now.replace(minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")


def test_counts_are_written_after_responses_not_per_token(make_client, http, reader):
    client, secret = make_client(client_id="billing")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert post_token(http, GRANT, authorization=basic("billing", secret)).status_code == 200
        for _ in range(2):
            assert post_token(http, GRANT, authorization=basic("billing", WRONG)).status_code == 401
    assert not [q for q in queries.captured_queries if "clientusage" in q["sql"]]  # nothing written yet
    usage.flush(force=True)
    response = http.get("/client/billing/usage", **reader)
    assert response.status_code == 200
    assert response.json() == {
        "client_id": "billing",
        "buckets": [{"hour": this_hour(), "tokens_issued": 5, "failed_authentications": 2}],
    }
    # Written counts are added to, never overwritten.
    post_token(http, GRANT, authorization=basic("billing", secret))
    usage.flush(force=True)
    assert http.get("/client/billing/usage", **reader).json()["buckets"][0]["tokens_issued"] == 6


def test_a_request_after_a_minute_writes_the_counts(make_client, http, monkeypatch):
    client, secret = make_client(client_id="billing")
    post_token(http, GRANT, authorization=basic("billing", secret))
    assert not ClientUsage.objects.exists()
    later = usage.time.monotonic() + usage.FLUSH_INTERVAL_SECONDS + 1
    monkeypatch.setattr(usage.time, "monotonic", lambda: later)
    post_token(http, GRANT, authorization=basic("billing", secret))
    assert ClientUsage.objects.get(client=client).tokens_issued == 2


def test_unknown_client_ids_leave_nothing(make_client, http):
    make_client(client_id="billing")
    for number in range(20):
        assert post_token(http, GRANT, authorization=basic(f"invented-{number}", WRONG)).status_code == 401
    usage.flush(force=True)
    assert not ClientUsage.objects.exists()


def test_a_process_holds_a_bounded_number_of_keys(monkeypatch):
    monkeypatch.setattr(usage, "MAX_PENDING", 3)
    for number in range(10):
        usage.authentication_failed(f"invented-{number}")
    assert len(usage._pending.counts) == 3


def test_rows_past_the_retention_are_deleted(make_client, http, settings):
    client, secret = make_client(client_id="billing")
    old = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=31)
    ClientUsage.objects.create(client=client, hour=old, tokens_issued=9)
    settings.USAGE_RETENTION = 30 * 86400
    post_token(http, GRANT, authorization=basic("billing", secret))
    usage.flush(force=True)
    assert list(ClientUsage.objects.values_list("tokens_issued", flat=True)) == [1]


def test_usage_needs_clients_read_and_a_known_client(make_client, http, reader):
    assert http.get("/client/billing/usage").status_code == 401
    assert http.get("/client/nobody/usage", **reader).status_code == 404
    make_client(client_id="billing")
    assert http.get("/client/billing/usage/", **reader).json() == {"client_id": "billing", "buckets": []}


@pytest.mark.live
def test_stopping_the_server_loses_no_count(tmp_path):
    database = tmp_path / "usage.sqlite3"
    with live_nodes(tmp_path, database_url=f"sqlite:///{database}", count=1, ISSUER="http://127.0.0.1") as (node,):
        auth = (node.client_id, node.client_secret)
        for _ in range(12):
            assert requests.post(f"{node.base_url}/oauth/token", data=GRANT, auth=auth, timeout=5).status_code == 200
    # gunicorn was stopped with SIGTERM; each worker wrote its counts as it exited.
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT sum(u.tokens_issued) FROM clients_clientusage u JOIN clients_client c ON c.id = u.client_id "
            "WHERE c.client_id = ?", (node.client_id,),
        ).fetchall()
    assert rows == [(12,)]
