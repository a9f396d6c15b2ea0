"""The token endpoint (RFC 6749 §4.4, §5; RFC 8707): success, every error, headers."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import Client, ClientSecret, Tenant
from clients.services import client_update
from tests.conftest import (
    TOKEN_PATHS,
    assert_oauth_error,
    basic,
    jwks_verify,
    outside_shared_state,
    post_token,
    shared_state_statements,
)

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def make_client(make_client):
    """Clients here have a scope unless a test says otherwise, so every token has one."""

    def make(**kwargs):
        kwargs.setdefault("allowed_scopes", ["read"])
        return make_client(**kwargs)

    return make


def token_body(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = json.loads(response.content)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    return body


@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("method", ["basic", "post"])
def test_every_token_path_issues_a_token_without_redirect(make_client, http, path, method):
    client, secret = make_client(allowed_scopes=["read", "write"])
    if method == "basic":
        response = post_token(http, GRANT, path=path, authorization=basic(client.client_id, secret))
    else:
        response = post_token(http, {**GRANT, "client_id": client.client_id, "client_secret": secret}, path=path)
    body = token_body(response)
    assert body["scope"] == "read write"
    assert body["expires_in"] == 3600
    claims = jwks_verify(http, body["access_token"])
    assert claims["client_id"] == client.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"]


def test_charset_parameter_on_content_type_is_accepted(make_client, http):
    client, secret = make_client()
    response = post_token(
        http,
        GRANT,
        authorization=basic(client.client_id, secret),
        content_type="application/x-www-form-urlencoded; charset=UTF-8",
    )
    token_body(response)


def test_unknown_parameters_are_ignored(make_client, http):
    client, secret = make_client()
    response = post_token(http, {**GRANT, "foo": "bar", "state": "x"}, authorization=basic(client.client_id, secret))
    token_body(response)


def test_parameters_without_value_count_as_omitted(make_client, http):
    """RFC 6749 §3.1: a parameter sent without a value is treated as omitted."""
    client, secret = make_client(allowed_scopes=["read"])
    response = post_token(http, "grant_type=client_credentials&scope=", authorization=basic(client.client_id, secret))
    assert token_body(response)["scope"] == "read"


# --- invalid_request ---------------------------------------------------------------------


@pytest.mark.parametrize("param", ["grant_type", "scope", "client_id", "client_secret", "audience"])
def test_repeated_parameter_is_invalid_request(make_client, http, param):
    client, secret = make_client(allowed_scopes=["read"], audiences=["https://api.example.com"])
    values = {
        "grant_type": ["client_credentials", "client_credentials"],
        "scope": ["read", "read"],
        "client_id": [client.client_id, client.client_id],
        "client_secret": [secret, secret],
        "audience": ["https://api.example.com", "https://api.example.com"],
    }
    data = {**GRANT, "client_id": client.client_id, "client_secret": secret, param: values[param]}
    body = assert_oauth_error(post_token(http, data), 400, "invalid_request")
    assert param in body["error_description"]
    assert secret not in body["error_description"]


def test_missing_grant_type_is_invalid_request(make_client, http):
    client, secret = make_client()
    assert_oauth_error(post_token(http, {}, authorization=basic(client.client_id, secret)), 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "multipart/form-data; boundary=x", ""],
)
def test_wrong_content_type_is_invalid_request(make_client, http, content_type):
    client, secret = make_client()
    response = post_token(
        http,
        "grant_type=client_credentials",
        content_type=content_type,
        authorization=basic(client.client_id, secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_json_body_is_invalid_request(make_client, http):
    client, secret = make_client()
    response = post_token(
        http,
        json.dumps({"grant_type": "client_credentials"}),
        content_type="application/json",
        authorization=basic(client.client_id, secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("body", [b"grant_type=client_credentials&x=%ff%fe", b"grant_type=\xff\xfe"])
def test_non_utf8_body_is_invalid_request(make_client, http, body):
    client, secret = make_client()
    assert_oauth_error(post_token(http, body, authorization=basic(client.client_id, secret)), 400, "invalid_request")


def test_non_utf8_charset_is_invalid_request(make_client, http):
    client, secret = make_client()
    response = post_token(
        http,
        GRANT,
        content_type="application/x-www-form-urlencoded; charset=latin-1",
        authorization=basic(client.client_id, secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_oversized_body_is_413_json(make_client, http, settings):
    client, secret = make_client()
    response = post_token(
        http, "grant_type=client_credentials&pad=" + "a" * 20000, authorization=basic(client.client_id, secret)
    )
    assert_oauth_error(response, 413, "invalid_request")


def test_too_many_fields_is_invalid_request(make_client, http):
    client, secret = make_client()
    body = "grant_type=client_credentials&" + "&".join(f"f{i}=1" for i in range(100))
    assert_oauth_error(post_token(http, body, authorization=basic(client.client_id, secret)), 400, "invalid_request")


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options", "head"])
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth2/token/"])
def test_other_methods_are_405_json(http, db, method, path):
    response = getattr(http, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response["Cache-Control"] == "no-store"
    if method != "head":
        assert json.loads(response.content)["error"] == "invalid_request"


def test_credentials_in_query_string_are_never_read(make_client, http):
    client, secret = make_client()
    response = http.post(
        f"/oauth/token?client_id={client.client_id}&client_secret={secret}",
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
    )
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize("path", ["/oauth/token/extra", "/oauth/tokens", "/nope"])
def test_unknown_paths_are_404_json(http, db, path):
    response = http.post(path, "grant_type=client_credentials", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"] == "not_found"


# --- grant type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant_type", ["password", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
)
def test_other_grant_types_are_unsupported(make_client, http, grant_type):
    client, secret = make_client()
    response = post_token(http, {"grant_type": grant_type}, authorization=basic(client.client_id, secret))
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_client_not_allowed_the_grant_is_unauthorized_client(make_client, http):
    client, secret = make_client()
    Client.objects.filter(pk=client.pk).update(grant_types=[])
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    assert_oauth_error(response, 400, "unauthorized_client")


def test_unsupported_grant_is_reported_before_client_authentication(http, db):
    response = post_token(http, {"grant_type": "password"}, authorization=basic("nobody", "nothing"))
    assert_oauth_error(response, 400, "unsupported_grant_type")


# --- scope ----------------------------------------------------------------------------------


def test_no_scope_grants_all_allowed_scopes(make_client, http):
    client, secret = make_client(allowed_scopes=["read", "write", "admin"])
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    assert body["scope"] == "read write admin"
    assert jwks_verify(http, body["access_token"])["scope"] == "read write admin"


def test_no_scope_grants_default_scopes_when_set(make_client, http):
    client, secret = make_client(allowed_scopes=["read", "write"], default_scopes=["read"])
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    assert body["scope"] == "read"


def test_client_without_scopes_gets_no_scope_member(make_client, http):
    """RFC 6749 §3.3 has no empty scope: nothing granted, no ``scope`` in body or token."""
    client, secret = make_client(allowed_scopes=[])
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    assert response.status_code == 200
    body = json.loads(response.content)
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert "scope" not in jwks_verify(http, body["access_token"])


def test_requested_subset_is_granted_in_request_order_without_repeats(make_client, http):
    client, secret = make_client(allowed_scopes=["read", "write", "admin"])
    response = post_token(http, {**GRANT, "scope": "write read write"}, authorization=basic(client.client_id, secret))
    body = token_body(response)
    assert body["scope"] == "write read"
    assert jwks_verify(http, body["access_token"])["scope"] == "write read"


@pytest.mark.parametrize(
    "scope", ["delete", "read delete", "tenant:other", 'read "x"', "read  write", "a\\b", "read\n", "read\x00"]
)
def test_scope_not_allowed_or_malformed_is_invalid_scope(make_client, http, scope):
    client, secret = make_client(allowed_scopes=["read", "write"], tenants=["acme"])
    response = post_token(http, {**GRANT, "scope": scope}, authorization=basic(client.client_id, secret))
    assert_oauth_error(response, 400, "invalid_scope")


def test_tenant_scope_narrows_tenants_and_roles(make_client, http):
    client, secret = make_client(
        allowed_scopes=["read"], tenants=["acme", "globex"], roles=["admin", "acme/ops", "globex/ops"]
    )
    response = post_token(http, {**GRANT, "scope": "read tenant:acme"}, authorization=basic(client.client_id, secret))
    body = token_body(response)
    assert body["scope"] == "read tenant:acme"
    claims = jwks_verify(http, body["access_token"])
    assert claims["tenants"] == ["acme"]
    assert sorted(claims["roles"]) == ["acme/ops", "admin"]


def test_without_tenant_scope_token_carries_all_tenants_and_roles(make_client, http):
    client, secret = make_client(tenants=["acme", "globex"], roles=["admin", "globex/ops"])
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    claims = jwks_verify(http, body["access_token"])
    assert claims["tenants"] == ["acme", "globex"]
    assert sorted(claims["roles"]) == ["admin", "globex/ops"]


def test_client_without_tenants_or_roles_has_no_such_claims(make_client, http):
    client, secret = make_client()
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    claims = jwks_verify(http, body["access_token"])
    assert "tenants" not in claims and "roles" not in claims


# --- audience (RFC 8707) ------------------------------------------------------------------------


def test_default_audience_is_clients_first_then_servers(make_client, http, settings):
    client, secret = make_client(audiences=["https://a.example.com", "https://b.example.com"])
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    assert jwks_verify(http, body["access_token"], audience="https://a.example.com")["aud"] == "https://a.example.com"

    bare, bare_secret = make_client()
    body = token_body(post_token(http, GRANT, authorization=basic(bare.client_id, bare_secret)))
    assert jwks_verify(http, body["access_token"])["aud"] == settings.ISSUER

    settings.DEFAULT_AUDIENCE = "https://default.example.com"
    body = token_body(post_token(http, GRANT, authorization=basic(bare.client_id, bare_secret)))
    assert jwks_verify(http, body["access_token"])["aud"] == "https://default.example.com"


def test_resource_picks_audience_and_may_repeat(make_client, http):
    client, secret = make_client(audiences=["https://a.example.com", "https://b.example.com"])
    auth = basic(client.client_id, secret)
    body = token_body(post_token(http, {**GRANT, "resource": "https://b.example.com"}, authorization=auth))
    assert jwks_verify(http, body["access_token"], audience="https://b.example.com")["aud"] == "https://b.example.com"

    data = {**GRANT, "resource": ["https://b.example.com", "https://a.example.com"]}
    body = token_body(post_token(http, data, authorization=auth))
    claims = jwks_verify(http, body["access_token"], audience="https://a.example.com")
    assert claims["aud"] == ["https://b.example.com", "https://a.example.com"]


def test_audience_parameter_picks_audience(make_client, http):
    client, secret = make_client(audiences=["orders-api", "https://b.example.com"])
    response = post_token(http, {**GRANT, "audience": "orders-api"}, authorization=basic(client.client_id, secret))
    assert jwks_verify(http, token_body(response)["access_token"], audience="orders-api")["aud"] == "orders-api"


@pytest.mark.parametrize(
    "data",
    [
        {"resource": "https://evil.example.com"},
        {"resource": "not-a-uri"},
        {"resource": "https://a.example.com#frag"},
        {"resource": "http://[::1"},
        {"resource": ["https://a.example.com", "https://evil.example.com"]},
        {"audience": "other"},
    ],
)
def test_resource_not_allowed_is_invalid_target(make_client, http, data):
    client, secret = make_client(audiences=["https://a.example.com"])
    response = post_token(http, {**GRANT, **data}, authorization=basic(client.client_id, secret))
    assert_oauth_error(response, 400, "invalid_target")


def test_checks_run_in_order_scope_before_audience(make_client, http):
    client, secret = make_client(allowed_scopes=["read"], audiences=["https://a.example.com"])
    data = {**GRANT, "scope": "nope", "resource": "https://evil.example.com"}
    assert_oauth_error(post_token(http, data, authorization=basic(client.client_id, secret)), 400, "invalid_scope")


# --- lifetime -------------------------------------------------------------------------------


def test_client_ttl_overrides_server_default(make_client, http, settings):
    settings.ACCESS_TOKEN_TTL = 600
    client, secret = make_client(access_token_ttl=90)
    body = token_body(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    assert body["expires_in"] == 90
    claims = jwks_verify(http, body["access_token"])
    assert claims["exp"] - claims["iat"] == 90

    other, other_secret = make_client()
    assert token_body(post_token(http, GRANT, authorization=basic(other.client_id, other_secret)))["expires_in"] == 600


def test_steady_state_token_request_is_one_read_and_no_write(make_client, http, settings):
    """The hot path's regression guard: in steady state a token costs one query (the
    registry version, which also says whether any lockout may hold) and no write, whatever
    the client's tenants and roles."""
    client, secret = make_client(allowed_scopes=["read", "write"], tenants=["acme", "beta"],
                                 roles=["admin", "acme/viewer"])
    auth = basic(client.client_id, secret)
    for _ in range(2):  # the first creates the signing key, which changes the registry
        token_body(post_token(http, GRANT, authorization=auth))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            token_body(post_token(http, {**GRANT, "scope": "read tenant:acme"}, authorization=auth))
    statements = outside_shared_state(queries.captured_queries)
    assert len(statements) == 20
    assert all(sql.lstrip().upper().startswith("SELECT") and "registrystate" in sql for sql in statements)
    # No lockout can hold, and the version row read says so (RegistryState.lockouts_until): the
    # lockout markers are not read (with Redis, they are one MGET outside the database).
    assert shared_state_statements(queries.captured_queries) == []


def test_registry_changes_reach_the_next_token_request(make_client, http):
    """The per-process snapshot never outlives a change: each write is seen at once."""
    client, secret = make_client(allowed_scopes=["read", "write"], tenants=["acme"], roles=["admin"])
    auth = basic(client.client_id, secret)
    assert token_body(post_token(http, GRANT, authorization=auth))["scope"] == "read write"
    client_update(client=client, fields={"allowed_scopes": ["read"]})
    assert token_body(post_token(http, GRANT, authorization=auth))["scope"] == "read"
    client_update(client=client, fields={}, roles=["auditor"], tenants=["beta"])
    claims = jwt.decode(token_body(post_token(http, GRANT, authorization=auth))["access_token"],
                        options={"verify_signature": False})
    assert (claims["tenants"], claims["roles"]) == (["beta"], ["auditor"])
    Tenant.objects.filter(slug="beta").update(slug="gamma")  # a bulk update, seen all the same
    claims = jwt.decode(token_body(post_token(http, GRANT, authorization=auth))["access_token"],
                        options={"verify_signature": False})
    assert claims["tenants"] == ["gamma"]
    tenant = Tenant.objects.get(slug="gamma")
    tenant.slug = "delta"
    tenant.save()  # a plain save (as the admin does) bumps through the signal
    claims = jwt.decode(token_body(post_token(http, GRANT, authorization=auth))["access_token"],
                        options={"verify_signature": False})
    assert claims["tenants"] == ["delta"]
    client_update(client=client, fields={"enabled": False})
    assert_oauth_error(post_token(http, GRANT, authorization=auth), 401, "invalid_client")


def test_secret_last_use_is_written_after_the_response_at_most_once_a_minute(make_client, http, monkeypatch):
    client, secret = make_client()
    auth = basic(client.client_id, secret)
    record = ClientSecret.objects.get(client=client)
    assert record.last_used is None
    token_body(post_token(http, GRANT, authorization=auth))
    record.refresh_from_db()
    first = record.last_used
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            token_body(post_token(http, GRANT, authorization=auth))
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    record.refresh_from_db()
    assert record.last_used == first
    later = first + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    token_body(post_token(http, GRANT, authorization=auth))
    record.refresh_from_db()
    assert record.last_used == first + timedelta(seconds=61)
