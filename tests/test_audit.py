"""The audit trail: every registry and key change, with who made it, in the database and the log."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from clients.audit import acting_as
from clients.models import AuditEvent
from clients.services import client_update, secret_add, secret_reset, secret_revoke
from tests.conftest import basic, post_token
from tokens.keys import key_rotate


def actions() -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.target) for e in AuditEvent.objects.order_by("id")]


def test_services_record_changes_with_the_actor(make_client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.audit")
    with acting_as("user:alice"):
        client, secret = make_client(client_id="billing", allowed_scopes=["read"])
        client_update(client=client, fields={"allowed_scopes": ["read", "write"], "enabled": False})
        added = secret_add(client=client)
        secret_revoke(client=client, prefix=added.record.prefix)
        reset = secret_reset(client=client)
    assert actions() == [
        ("user:alice", "client.created", "billing"),
        ("user:alice", "client.updated", "billing"),
        ("user:alice", "secret.added", "billing"),
        ("user:alice", "secret.revoked", "billing"),
        ("user:alice", "secret.reset", "billing"),
    ]
    updated = AuditEvent.objects.get(action="client.updated")
    assert updated.changes == {"allowed_scopes": [["read"], ["read", "write"]], "enabled": [True, False]}
    assert AuditEvent.objects.get(action="secret.reset").changes == {
        "prefix": reset.record.prefix,
        "revoked": [secret[:12]],
    }
    logged = [r for r in caplog.records if getattr(r, "audit", False)]
    assert [r.action for r in logged] == [a for _, a, _ in actions()]
    assert all(r.actor == "user:alice" for r in logged)
    everything = json.dumps([e.changes for e in AuditEvent.objects.all()]) + caplog.text
    for value in (secret, added.secret, reset.secret):
        assert value not in everything


def test_unchanged_update_records_nothing(make_client):
    client, _ = make_client(allowed_scopes=["read"])
    before = AuditEvent.objects.count()
    client_update(client=client, fields={"allowed_scopes": ["read"]})
    assert AuditEvent.objects.count() == before


def test_api_changes_are_attributed_to_the_calling_client(make_client, http):
    ops, secret = make_client(client_id="ops-bot", allowed_scopes=["clients:write"])
    token = json.loads(
        post_token(http, {"grant_type": "client_credentials"}, authorization=basic("ops-bot", secret)).content
    )["access_token"]
    response = http.post(
        "/client",
        {"client_id": "made-by-api", "client_name": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201
    reset = http.post(
        "/client/made-by-api/reset_secret", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert reset.status_code == 200, reset.content
    assert ("client:ops-bot", "client.created", "made-by-api") in actions()
    assert ("client:ops-bot", "secret.reset", "made-by-api") in actions()


def test_admin_changes_are_attributed_to_the_staff_user(db, client):
    User.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    assert client.login(username="root", password="pw-for-tests-only")
    key_rotate()  # outside a request: the system
    response = client.post("/admin/tokens/signingkey/rotate/", {"confirm": "yes"})
    assert response.status_code in (200, 302)
    rotations = [(actor, action) for actor, action, _ in actions() if action == "signing_key.rotated"]
    assert rotations == [("system", "signing_key.rotated"), ("user:root", "signing_key.rotated")]


def test_cli_changes_are_attributed_to_the_cli(db):
    call_command("createclient", "svc", "--client-id", "cli-made", "--json", stdout=open("/dev/null", "w"))
    call_command("rotatekeys", stdout=open("/dev/null", "w"))
    assert ("cli", "client.created", "cli-made") in actions()
    assert ("cli", "signing_key.rotated") in [(a, b) for a, b, _ in actions()]


def test_audit_trail_is_read_only_in_the_admin(admin_client, make_client):
    make_client(client_id="seen-in-admin")
    response = admin_client.get("/admin/clients/auditevent/")
    assert response.status_code == 200
    assert b"seen-in-admin" in response.content and b"client.created" in response.content
    event = AuditEvent.objects.first()
    assert admin_client.get("/admin/clients/auditevent/add/").status_code == 403
    page = admin_client.get(f"/admin/clients/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert admin_client.post(f"/admin/clients/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize("fmt", ["json"])
def test_json_log_lines(fmt):
    from authserver.logging import JsonFormatter

    record = logging.LogRecord("authserver.audit", logging.INFO, __file__, 1, "client.created %s", ("x",), None)
    record.action, record.target, record.changes = "client.created", "x", {"enabled": [True, False]}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "client.created x"
    assert line["logger"] == "authserver.audit" and line["level"] == "INFO"
    assert line["action"] == "client.created" and line["changes"] == {"enabled": [True, False]}
    assert "time" in line
