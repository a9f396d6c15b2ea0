"""Errors are JSON everywhere outside the admin, and secrets never reach a log or an error."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client as HttpClient

from tests.conftest import basic, post_token


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_read_only_endpoints_answer_other_methods_with_json_405(db, path, method):
    response = getattr(HttpClient(enforce_csrf_checks=True), method)(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert json.loads(response.content) == {
        "error": "invalid_request",
        "error_description": "This endpoint accepts only GET and HEAD.",
    }


def test_disallowed_host_is_json_400(http, db):
    response = post_token(http, {"grant_type": "client_credentials"}, HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"] == "invalid_request"


def test_admin_keeps_html_errors(http, db):
    response = http.get("/admin/no-such-page/")
    assert response.status_code in (302, 404)
    assert response.get("Content-Type", "").startswith("text/html")


def test_unexpected_failure_is_json_500(make_client, http, monkeypatch):
    from tokens import grant

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    client, secret = make_client()
    monkeypatch.setattr(grant, "issue_access_token", explode)
    http.raise_request_exception = False
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret))
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": "server_error",
        "error_description": "The server could not complete the request.",
    }


def test_database_outage_is_json_503_with_retry_after(make_client, http, monkeypatch):
    from django.db import OperationalError

    from clients import registry

    client, secret = make_client()

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(registry, "current_version", down)
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


def test_no_secret_or_token_in_any_log_line(make_client, http, caplog):
    """Even with every logger at DEBUG as configured, secrets and tokens stay out of the logs."""
    caplog.set_level(logging.DEBUG)
    client, secret = make_client(allowed_scopes=["read"])
    tokens = []
    for authorization, data in [
        (basic(client.client_id, secret), {"grant_type": "client_credentials"}),
        (None, {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}),
    ]:
        response = post_token(http, data, authorization=authorization)
        tokens.append(json.loads(response.content)["access_token"])
    post_token(http, {"grant_type": "client_credentials", "client_id": secret, "client_secret": secret})
    post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret + "x"))
    text = "\n".join(record.getMessage() + " " + repr(record.__dict__) for record in caplog.records)
    assert "token issued" in text
    for value in (secret, *tokens):
        assert value not in text
