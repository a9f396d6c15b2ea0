"""API keys (DESIGN §9.5): the format, the management API, introspection, bearer
authentication of the management API, revocation (operator and RFC 7009), and what
each costs the database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clients import registry
from clients import secrets as client_secrets
from clients.models import ApiKey, AuditEvent, Client
from clients.services import api_key_create, api_key_revoke, client_delete, client_update
from tests.conftest import assert_oauth_error, basic, outside_shared_state, post_token

GRANT = {"grant_type": "client_credentials"}
INACTIVE = {"active": False}


def api(http: HttpClient, method: str, path: str, body: Any = None, *, auth: str) -> Any:
    data = "" if body is None else json.dumps(body)
    return http.generic(method, path, data, content_type="application/json", HTTP_AUTHORIZATION=auth)


def json_body(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def bearer_token(http: HttpClient, client_id: str, secret: str) -> str:
    response = post_token(http, GRANT, authorization=basic(client_id, secret))
    assert response.status_code == 200, response.content
    return "Bearer " + json.loads(response.content)["access_token"]


@pytest.fixture
def writer(http: HttpClient, make_client: Callable[..., tuple[Client, str]]) -> str:
    client, secret = make_client(client_id="ops-bot", allowed_scopes=["clients:read", "clients:write"])
    return bearer_token(http, client.client_id, secret)


@pytest.fixture
def billing(make_client: Callable[..., tuple[Client, str]]) -> tuple[Client, str]:
    return make_client(
        client_id="billing", allowed_scopes=["invoices:read", "invoices:write", "clients:read"],
        default_scopes=["invoices:read"], tenants=["acme"],
    )


@pytest.fixture
def introspector(make_client: Callable[..., tuple[Client, str]]) -> str:
    client, secret = make_client(client_id="my-api")
    return basic(client.client_id, secret)


def introspect(http: HttpClient, auth: str, token: str) -> Any:
    return json_body(post_token(http, {"token": token}, path="/oauth/introspect", authorization=auth), 200)


def iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the format --------------------------------------------------------------------------


def test_a_key_has_its_own_marker_and_checksum_and_is_never_a_secret() -> None:
    key, secret = client_secrets.generate_api_key(), client_secrets.generate_secret()
    assert key.startswith("asak_") and len(key) == len(secret) == 65
    assert set(key[5:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    assert client_secrets.is_api_key(key)
    assert not client_secrets.is_well_formed(key)
    assert not client_secrets.is_api_key(secret)
    # The same random body under the other marker fails the other's checksum and marker.
    assert not client_secrets.is_well_formed("ascs_" + key[5:])
    assert not client_secrets.is_api_key("asak_" + secret[5:])
    mistyped = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
    for bad in (mistyped, key[:-1], key + "A", key.upper(), "", "asak_", key[:12]):
        assert not client_secrets.is_api_key(bad)


# --- the management API ------------------------------------------------------------------


def test_create_shows_the_key_once_with_defaults_from_the_client_and_settings(http, writer, billing):
    before = timezone.now()
    response = api(http, "POST", "/client/billing/api_keys", {"name": "nightly export"}, auth=writer)
    data = json_body(response, 201)
    record = ApiKey.objects.get()
    assert data == {
        "api_key": data["api_key"], "prefix": record.prefix, "name": "nightly export", "scope": "invoices:read",
        "created": iso(record.created), "expires": iso(record.expires), "last_used": None, "revoked": None,
    }
    assert client_secrets.is_api_key(data["api_key"]) and data["api_key"].startswith(record.prefix)
    assert len(record.prefix) == 12
    assert record.expires - record.created == timedelta(days=90)
    assert record.created >= before
    assert response["Cache-Control"] == "no-store"
    assert response["Location"] == f"/client/billing/api_keys/{record.prefix}"
    # Only a keyed hash is stored, never the key.
    assert data["api_key"] not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert record.hash == client_secrets.hash_secret(data["api_key"])[1]
    # Reads never show it again.
    listed = json_body(api(http, "GET", "/client/billing/api_keys", auth=writer), 200)
    assert listed == [{key: value for key, value in data.items() if key != "api_key"}]
    one = json_body(api(http, "GET", f"/client/billing/api_keys/{record.prefix}/", auth=writer), 200)
    assert one == listed[0]


@pytest.mark.parametrize(
    ("request_body", "lifetime", "scope"),
    [
        ({"name": "n", "expires_in": "12h", "scope": "invoices:write tenant:acme"}, timedelta(hours=12),
         "invoices:write tenant:acme"),
        ({"name": "n", "expires_in": 3600}, timedelta(hours=1), "invoices:read"),
        ({"name": "n", "expires_in": "365d"}, timedelta(days=365), "invoices:read"),
    ],
)
def test_create_takes_a_lifetime_and_scopes_allowed_for_the_client(http, writer, billing, request_body, lifetime,
                                                                    scope):
    data = json_body(api(http, "POST", "/client/billing/api_keys", request_body, auth=writer), 201)
    assert parse_datetime(data["expires"]) - parse_datetime(data["created"]) == lifetime
    assert data["scope"] == scope


def test_create_takes_an_iso_expiry(http, writer, billing):
    expires = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    data = json_body(api(http, "POST", "/client/billing/api_keys", {"name": "n", "expires": iso(expires)},
                         auth=writer), 201)
    assert data["expires"] == iso(expires)


def test_lifetimes_follow_the_settings(http, writer, billing, settings):
    settings.API_KEY_DEFAULT_LIFETIME, settings.API_KEY_MAX_LIFETIME = "1d", "7d"
    data = json_body(api(http, "POST", "/client/billing/api_keys", {"name": "n"}, auth=writer), 201)
    assert parse_datetime(data["expires"]) - parse_datetime(data["created"]) == timedelta(days=1)
    assert json_body(api(http, "POST", "/client/billing/api_keys", {"name": "n", "expires_in": "8d"}, auth=writer),
                     400) == {"expires_in": ["At most API_KEY_MAX_LIFETIME (604800 seconds)."]}


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": "  "}, {"name": ["This field may not be blank."]}),
        ({"name": "n", "scope": "invoices:delete"}, {"scope": ["Not allowed for this client: invoices:delete."]}),
        ({"name": "n", "scope": "tenant:other"}, {"scope": ["Not allowed for this client: tenant:other."]}),
        ({"name": "n", "scope": 7}, {"scope": ["Expected a string of space-delimited scopes."]}),
        ({"name": "n", "expires_in": "366d"}, {"expires_in": ["At most API_KEY_MAX_LIFETIME (31536000 seconds)."]}),
        ({"name": "n", "expires_in": "soon"},
         {"expires_in": ["Expected a positive number of seconds or a duration such as 12h or 90d."]}),
        ({"name": "n", "expires_in": 0},
         {"expires_in": ["Expected a positive number of seconds or a duration such as 12h or 90d."]}),
        ({"name": "n", "expires_in": True},
         {"expires_in": ["Expected a positive number of seconds or a duration such as 12h or 90d."]}),
        ({"name": "n", "expires": "2000-01-01T00:00:00Z"}, {"expires": ["An API key must expire in the future."]}),
        ({"name": "n", "expires": "2999-01-01T00:00:00Z"},
         {"expires": ["At most API_KEY_MAX_LIFETIME (31536000 seconds) from now."]}),
        ({"name": "n", "expires": "tomorrow"},
         {"expires": ["Datetime has wrong format. Use one of these formats instead: "
                      "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
        ({"name": "n", "expires_in": "1d", "expires": "2999-01-01T00:00:00Z"},
         {"expires": ["Give expires_in or expires, not both."]}),
        ({"name": "n", "api_key": "asak_x"}, {"api_key": ["This field is read-only."]}),
        ({"name": "n", "colour": "red"}, {"colour": ["Unknown field."]}),
    ],
)
def test_create_refuses_bad_input_and_makes_nothing(http, writer, billing, request_body, errors):
    assert json_body(api(http, "POST", "/client/billing/api_keys", request_body, auth=writer), 400) == errors
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.filter(action="api_key.created").exists()


def test_unknown_clients_and_prefixes_are_404(http, writer, billing):
    assert json_body(api(http, "GET", "/client/nobody/api_keys", auth=writer), 404) == {"detail": "No client 'nobody'."}
    assert json_body(api(http, "POST", "/client/nobody/api_keys", {"name": "n"}, auth=writer), 404) == {
        "detail": "No client 'nobody'."}
    for prefix in ("asak_nothere", "a%00b", "x" * 40):
        assert json_body(api(http, "GET", f"/client/billing/api_keys/{prefix}", auth=writer), 404) == {
            "detail": f"No API key with prefix {prefix.replace('%00', chr(0))!r}."}
    assert json_body(api(http, "DELETE", "/client/billing/api_keys/asak_nothere", auth=writer), 404) == {
        "detail": "No live API key with prefix 'asak_nothere'."}


def test_reads_need_clients_read_and_writes_clients_write(http, make_client, billing):
    client, secret = make_client(client_id="reader", allowed_scopes=["clients:read"])
    reader = bearer_token(http, client.client_id, secret)
    assert json_body(api(http, "GET", "/client/billing/api_keys", auth=reader), 200) == []
    response = api(http, "POST", "/client/billing/api_keys", {"name": "n"}, auth=reader)
    assert json_body(response, 403) == {"detail": "The access token lacks the scope clients:write."}
    assert response["WWW-Authenticate"] == (
        'Bearer realm="authserver", error="insufficient_scope", scope="clients:write"'
    )
    response = http.get("/client/billing/api_keys")
    assert json_body(response, 401) == {"detail": "Authentication credentials were not provided."}


def test_delete_revokes_the_key_which_stays_listed_until_it_would_have_expired(http, writer, introspector, billing):
    client, _ = billing
    issued = api_key_create(client=client, name="cron")
    assert introspect(http, introspector, issued.api_key)["active"] is True
    response = api(http, "DELETE", f"/client/billing/api_keys/{issued.record.prefix}", auth=writer)
    assert response.status_code == 204
    assert introspect(http, introspector, issued.api_key) == INACTIVE
    listed = json_body(api(http, "GET", "/client/billing/api_keys", auth=writer), 200)
    assert [(key["prefix"], key["revoked"] is not None) for key in listed] == [(issued.record.prefix, True)]
    assert json_body(api(http, "DELETE", f"/client/billing/api_keys/{issued.record.prefix}", auth=writer), 404) == {
        "detail": f"No live API key with prefix {issued.record.prefix!r}."}
    # Past its expiry it is no longer listed.
    ApiKey.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert json_body(api(http, "GET", "/client/billing/api_keys", auth=writer), 200) == []
    events = list(AuditEvent.objects.filter(action__startswith="api_key.").order_by("id").values_list(
        "action", "actor", "changes"))
    assert events == [
        ("api_key.created", "system", {"prefix": issued.record.prefix, "name": "cron", "scope": "invoices:read",
                                       "expires": issued.record.expires.isoformat()}),
        ("api_key.revoked", "client:ops-bot", {"prefix": issued.record.prefix, "name": "cron"}),
    ]


# --- introspection -----------------------------------------------------------------------


def test_introspection_answers_a_key_with_its_own_facts_only(http, introspector, billing):
    client, _ = billing
    issued = api_key_create(client=client, name="cron", scopes=["invoices:write", "tenant:acme"])
    assert introspect(http, introspector, issued.api_key) == {
        "active": True, "token_type": "Bearer", "scope": "invoices:write tenant:acme", "client_id": "billing",
        "sub": "billing", "exp": int(issued.record.expires.timestamp()), "iat": int(issued.record.created.timestamp()),
    }


def test_a_key_is_inactive_once_revoked_expired_or_its_client_disabled_or_deleted(http, introspector, billing,
                                                                                 make_client):
    client, _ = billing
    keys = [api_key_create(client=client, name=f"k{n}") for n in range(3)]
    for issued in keys:
        assert introspect(http, introspector, issued.api_key)["active"] is True
    api_key_revoke(client=client, prefix=keys[0].record.prefix)
    assert introspect(http, introspector, keys[0].api_key) == INACTIVE
    ApiKey.objects.filter(pk=keys[1].record.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert introspect(http, introspector, keys[1].api_key) == INACTIVE
    assert introspect(http, introspector, keys[2].api_key)["active"] is True
    client_update(client=client, fields={"enabled": False})
    assert introspect(http, introspector, keys[2].api_key) == INACTIVE
    client_update(client=client, fields={"enabled": True})
    assert introspect(http, introspector, keys[2].api_key)["active"] is True
    client_delete(client=client)
    assert introspect(http, introspector, keys[2].api_key) == INACTIVE


def test_a_key_past_its_expiry_is_inactive_without_any_write(http, introspector, billing, monkeypatch):
    client, _ = billing
    issued = api_key_create(client=client, name="cron", expires_in=3600)
    assert introspect(http, introspector, issued.api_key)["active"] is True
    later = issued.record.expires + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert introspect(http, introspector, issued.api_key) == INACTIVE


def test_narrowing_the_clients_scopes_narrows_its_keys(http, introspector, billing):
    client, _ = billing
    issued = api_key_create(client=client, name="cron", scopes=["invoices:read", "invoices:write"])
    client_update(client=client, fields={"allowed_scopes": ["invoices:read"], "default_scopes": []})
    assert introspect(http, introspector, issued.api_key)["scope"] == "invoices:read"


def test_garbage_foreign_truncated_and_wrong_keys_are_inactive_and_cost_no_query(http, introspector, billing):
    client, secret = billing
    issued = api_key_create(client=client, name="cron")
    introspect(http, introspector, issued.api_key)  # the snapshot is loaded
    key = issued.api_key
    wrong_body = client_secrets.generate_api_key()
    same_prefix = key[:12] + wrong_body[12:-6]
    same_prefix += client_secrets._checksum(same_prefix)  # well formed, our prefix, not our key
    malformed = [key[:-1], key[:-6] + "AAAAAA", key + "x", "asak_", "asak_" + "A" * 60, secret, "ascs_" + key[5:]]
    for token in [*malformed, wrong_body, same_prefix]:
        assert introspect(http, introspector, token) == INACTIVE, token[:12]
    with CaptureQueriesContext(connection) as queries:
        for token in [*malformed, wrong_body, same_prefix, key]:
            introspect(http, introspector, token)
    # Client authentication and the keys share one registry version read per request.
    statements = outside_shared_state(queries.captured_queries)
    assert len(statements) == len(malformed) + 3
    assert all("registrystate" in sql for sql in statements)


def test_a_wrong_key_and_an_unknown_prefix_cost_the_same_comparison(billing, monkeypatch):
    """An unknown prefix is compared against a dummy hash, as a wrong key against its key's."""
    from tokens.verification import InvalidToken, verify_api_key

    client, _ = billing
    issued = api_key_create(client=client, name="cron")
    wrong = issued.api_key[:12] + client_secrets.generate_api_key()[12:-6]
    wrong += client_secrets._checksum(wrong)
    compared: list[int] = []
    original = client_secrets.hash_secret

    def counting(secret: str, key: Any = None) -> tuple[str, str]:
        compared.append(1)
        return original(secret, key)

    monkeypatch.setattr(client_secrets, "hash_secret", counting)
    counts = []
    for token in (wrong, client_secrets.generate_api_key()):
        compared.clear()
        with pytest.raises(InvalidToken):
            verify_api_key(token, now=timezone.now())
        counts.append(len(compared))
    assert counts == [1, 1]


def test_steady_state_key_introspection_is_one_version_read(http, introspector, billing, settings,
                                                           django_assert_num_queries):
    client, _ = billing
    issued = api_key_create(client=client, name="cron")
    introspect(http, introspector, issued.api_key)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            assert introspect(http, introspector, issued.api_key)["active"] is True
    statements = outside_shared_state(queries.captured_queries)
    assert len(statements) == 10
    assert all(sql.lstrip().upper().startswith("SELECT") and "registrystate" in sql for sql in statements)


def test_last_use_is_recorded_after_the_response_at_most_once_a_minute(http, introspector, billing, monkeypatch):
    client, _ = billing
    issued = api_key_create(client=client, name="cron")
    introspect(http, introspector, issued.api_key)
    record = ApiKey.objects.get()
    first = record.last_used
    assert first is not None
    version = registry.current_version()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            introspect(http, introspector, issued.api_key)
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"].upper() and "apikey" in q["sql"]]
    later = first + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    introspect(http, introspector, issued.api_key)
    record.refresh_from_db()
    assert record.last_used == later
    assert registry.current_version() == version  # bookkeeping moves no version


# --- the token endpoint never takes a key, and bearer authentication never a secret -------


def test_a_key_is_never_a_client_secret_nor_a_secret_a_key(http, billing):
    client, secret = billing
    issued = api_key_create(client=client, name="cron", scopes=["clients:read"])
    assert_oauth_error(post_token(http, GRANT, authorization=basic("billing", issued.api_key)), 401, "invalid_client")
    assert_oauth_error(post_token(http, {**GRANT, "client_id": "billing", "client_secret": issued.api_key}), 401,
                       "invalid_client")
    assert_oauth_error(post_token(http, {"token": "x"}, path="/oauth/introspect",
                                  authorization=basic("billing", issued.api_key)), 401, "invalid_client")
    response = http.get("/client", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert json_body(response, 401) == {"detail": "The access token is invalid, expired or revoked."}
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'


# --- the management API with a key -------------------------------------------------------


def test_the_management_api_takes_a_key_with_the_same_scope_checks(http, make_client, billing):
    ops, _ = make_client(client_id="ops-bot", allowed_scopes=["clients:read", "clients:write"])
    reader = api_key_create(client=ops, name="dashboard", scopes=["clients:read"])
    writer = api_key_create(client=ops, name="terraform", scopes=["clients:write"])
    listed = json_body(api(http, "GET", "/client/billing", auth=f"Bearer {reader.api_key}"), 200)
    assert listed["client_id"] == "billing"
    response = api(http, "PATCH", "/client/billing", {"client_name": "B"}, auth=f"Bearer {reader.api_key}")
    assert json_body(response, 403) == {"detail": "The access token lacks the scope clients:write."}
    response = api(http, "PATCH", "/client/billing", {"client_name": "B"}, auth=f"Bearer {writer.api_key}")
    assert json_body(response, 200)["client_name"] == "B"
    assert AuditEvent.objects.filter(action="client.updated").get().actor == "client:ops-bot"
    api_key_revoke(client=ops, prefix=writer.record.prefix)
    response = api(http, "PATCH", "/client/billing", {"client_name": "C"}, auth=f"Bearer {writer.api_key}")
    assert json_body(response, 401) == {"detail": "The access token is invalid, expired or revoked."}
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
    for bad in (writer.api_key[:-1], writer.api_key + "A", "asak_"):
        assert api(http, "GET", "/client/billing", auth=f"Bearer {bad}").status_code == 401


def test_key_authentication_of_the_management_api_costs_no_query(http, make_client, billing):
    ops, _ = make_client(client_id="ops-bot", allowed_scopes=["clients:read"])
    reader = api_key_create(client=ops, name="dashboard", scopes=["clients:read"])
    auth = f"Bearer {reader.api_key}"
    json_body(api(http, "GET", "/client/billing/usage", auth=auth), 200)
    with CaptureQueriesContext(connection) as queries:
        json_body(api(http, "GET", "/client/billing/usage", auth=auth), 200)
    statements = [q["sql"] for q in queries.captured_queries]
    # The registry version, then the view's own reads (the client, its usage).
    assert "registrystate" in statements[0]
    assert not [sql for sql in statements if "apikey" in sql or "registrystate" in sql][1:]
    assert len(statements) == 3


# --- RFC 7009 by the key's own client ------------------------------------------------------


def test_a_client_revokes_its_own_key_and_not_anothers(http, billing, make_client, introspector):
    client, secret = billing
    other, other_secret = make_client(client_id="other")
    issued = api_key_create(client=client, name="cron")
    response = post_token(http, {"token": issued.api_key}, path="/oauth/revoke",
                          authorization=basic("other", other_secret))
    assert_oauth_error(response, 400, "unauthorized_client")
    assert introspect(http, introspector, issued.api_key)["active"] is True
    response = post_token(http, {"token": issued.api_key, "token_type_hint": "access_token"}, path="/oauth/revoke",
                          authorization=basic("billing", secret))
    assert json_body(response, 200) == {}
    assert introspect(http, introspector, issued.api_key) == INACTIVE
    assert AuditEvent.objects.filter(action="api_key.revoked").get().actor == "client:billing"
    # Again, or a malformed key: 200 all the same (RFC 7009 §2.2).
    for token in (issued.api_key, issued.api_key[:-2], "asak_"):
        assert json_body(post_token(http, {"token": token}, path="/oauth/revoke",
                                    authorization=basic("billing", secret)), 200) == {}


def test_steady_state_token_introspection_is_the_version_and_one_revocation_read(http, introspector, billing):
    """Access tokens too: the client comes from the snapshot; only the revocation list is read."""
    client, secret = billing
    token = bearer_token(http, "billing", secret).removeprefix("Bearer ")
    introspect(http, introspector, token)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert introspect(http, introspector, token)["active"] is True
    statements = outside_shared_state(queries.captured_queries)
    assert sorted("registrystate" in sql for sql in statements) == [False] * 5 + [True] * 5
    assert all("revokedtoken" in sql for sql in statements if "registrystate" not in sql)


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ("{not json", {"detail": "JSON parse error - Expecting property name enclosed in double quotes: "
                                 "line 1 column 2 (char 1)"}),
        ("[]", {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ('{"name": "n\\u0000"}', {"name": ["Null characters are not allowed."]}),
    ],
)
def test_a_malformed_body_is_400_json(http, writer, billing, raw, errors):
    response = http.post("/client/billing/api_keys", raw, content_type="application/json",
                         HTTP_AUTHORIZATION=writer)
    assert json_body(response, 400) == errors
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("header", ["Bearer asak_", "Bearer asak_" + "\u00e9" * 60, "Bearer  ", "bearer asak_x y"])
def test_a_malformed_bearer_key_is_401_json(http, header):
    response = http.get("/client", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
