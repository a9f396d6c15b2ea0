"""Introspection (RFC 7662) and revocation (RFC 7009) for resource servers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client
from tests.conftest import assert_oauth_error, basic, post_token
from tokens.models import RevokedToken
from tokens.revocation import prune_revocations

GRANT = {"grant_type": "client_credentials"}
INTROSPECT = "/oauth/introspect"
REVOKE = "/oauth/revoke"


@pytest.fixture
def service(make_client):
    """A client holding a token: (client, secret, token)."""

    def make(**kwargs):
        kwargs.setdefault("allowed_scopes", ["read", "write"])
        client, secret = make_client(**kwargs)
        response = post_token(http_client(), GRANT, authorization=basic(client.client_id, secret))
        return client, secret, json.loads(response.content)["access_token"]

    return make


def http_client():
    from django.test import Client as HttpClient

    return HttpClient()


def introspect(http, caller, token, **extra):
    client, secret = caller[0], caller[1]
    return post_token(http, {"token": token, **extra}, path=INTROSPECT, authorization=basic(client.client_id, secret))


def revoke(http, caller, token, **extra):
    client, secret = caller[0], caller[1]
    return post_token(http, {"token": token, **extra}, path=REVOKE, authorization=basic(client.client_id, secret))


# --- introspection ------------------------------------------------------------------------


def test_active_token_reports_its_claims(service, http):
    owner = service(tenants=["acme"], roles=["admin"])
    resource_server = service()
    response = introspect(http, resource_server, owner[2])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = json.loads(response.content)
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == body["sub"] == owner[0].client_id
    assert body["scope"] == "read write"
    assert body["iss"] == "http://testserver"
    assert body["aud"] == "http://testserver"
    assert body["exp"] - body["iat"] == 3600
    assert body["tenants"] == ["acme"] and body["roles"] == ["admin"]
    assert set(body) == {
        "active",
        "token_type",
        "client_id",
        "sub",
        "scope",
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
        "tenants",
        "roles",
    }


def test_client_may_introspect_its_own_token_with_body_credentials(service, http):
    client, secret, token = service()
    data = {"token": token, "client_id": client.client_id, "client_secret": secret}
    assert json.loads(post_token(http, data, path=INTROSPECT).content)["active"] is True


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "nonsense"])
def test_token_type_hint_does_not_change_the_answer(service, http, hint):
    owner = service()
    assert json.loads(introspect(http, owner, owner[2], token_type_hint=hint).content)["active"] is True


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000, "ascs_" + "a" * 60],
)
def test_garbage_is_exactly_inactive(service, http, token):
    caller = service()
    response = introspect(http, caller, token)
    assert response.status_code == 200
    assert json.loads(response.content) == {"active": False}


def test_tampered_token_is_inactive(service, http):
    owner = service()
    header, payload, signature = owner[2].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert json.loads(introspect(http, owner, tampered).content) == {"active": False}


def test_expired_token_is_inactive(service, http, monkeypatch):
    owner = service()
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600 + 60)
    assert json.loads(introspect(http, owner, owner[2]).content) == {"active": False}


def test_token_of_disabled_or_deleted_client_is_inactive(service, http):
    owner = service()
    caller = service()
    Client.objects.filter(pk=owner[0].pk).update(enabled=False)
    assert json.loads(introspect(http, caller, owner[2]).content) == {"active": False}
    Client.objects.filter(pk=owner[0].pk).delete()
    assert json.loads(introspect(http, caller, owner[2]).content) == {"active": False}


def test_introspection_requires_client_authentication(service, http):
    owner = service()
    response = post_token(http, {"token": owner[2]}, path=INTROSPECT)
    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic")
    wrong = post_token(http, {"token": owner[2]}, path=INTROSPECT, authorization=basic(owner[0].client_id, "nope"))
    assert_oauth_error(wrong, 401, "invalid_client")


def test_introspection_without_token_is_invalid_request(service, http):
    caller = service()
    response = post_token(http, {}, path=INTROSPECT, authorization=basic(caller[0].client_id, caller[1]))
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("path", [INTROSPECT, REVOKE, INTROSPECT + "/", "/oauth2/revoke"])
def test_get_is_405_json(http, db, path):
    response = http.get(path)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


# --- revocation ---------------------------------------------------------------------------


def test_revoked_token_is_inactive_and_refused_at_once(service, http):
    owner = service()
    caller = service()
    response = revoke(http, owner, owner[2])
    assert response.status_code == 200
    assert json.loads(response.content) == {}
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert json.loads(introspect(http, caller, owner[2]).content) == {"active": False}
    assert RevokedToken.objects.filter(client_id=owner[0].client_id).count() == 1


def test_revoking_twice_is_fine(service, http):
    owner = service()
    assert revoke(http, owner, owner[2]).status_code == 200
    assert revoke(http, owner, owner[2]).status_code == 200
    assert RevokedToken.objects.count() == 1


def test_other_clients_token_cannot_be_revoked_and_stays_active(service, http):
    owner = service()
    attacker = service()
    assert_oauth_error(revoke(http, attacker, owner[2]), 400, "unauthorized_client")
    assert json.loads(introspect(http, attacker, owner[2]).content)["active"] is True
    assert not RevokedToken.objects.exists()


@pytest.mark.parametrize("token", ["garbage", "", "a.b.c"])
def test_unknown_or_malformed_tokens_answer_200(service, http, token):
    owner = service()
    response = revoke(http, owner, token)
    if token == "":
        assert_oauth_error(response, 400, "invalid_request")  # an empty value is an omitted parameter
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "unknown_type"])
def test_any_token_type_hint_is_accepted(service, http, hint):
    """RFC 7009 §2.1: the hint is only a hint; an unknown one is ignored."""
    owner = service()
    assert revoke(http, owner, owner[2], token_type_hint=hint).status_code == 200
    assert RevokedToken.objects.count() == 1


def test_revocation_requires_client_authentication(service, http):
    owner = service()
    assert_oauth_error(post_token(http, {"token": owner[2]}, path=REVOKE), 401, "invalid_client")
    assert json.loads(introspect(http, owner, owner[2]).content)["active"] is True


def test_revocations_are_pruned_after_expiry(service, http):
    owner = service()
    revoke(http, owner, owner[2])
    assert prune_revocations(now=timezone.now()) == 0
    assert prune_revocations(now=timezone.now() + timedelta(hours=2)) == 1
    assert not RevokedToken.objects.exists()


def test_prunetokens_command(service, http):
    from io import StringIO

    from django.core.management import call_command

    owner = service()
    revoke(http, owner, owner[2])
    RevokedToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    out = StringIO()
    call_command("prunetokens", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 expired revocation(s) and 0 retired signing key(s)."
    assert not RevokedToken.objects.exists()


def test_metadata_lists_introspection_and_revocation(http, db):
    body = json.loads(http.get("/.well-known/oauth-authorization-server").content)
    assert body["introspection_endpoint"] == "http://testserver/oauth/introspect"
    assert body["revocation_endpoint"] == "http://testserver/oauth/revoke"
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth",
               "self_signed_tls_client_auth"]
    assert body["introspection_endpoint_auth_methods_supported"] == methods
    assert body["revocation_endpoint_auth_methods_supported"] == methods


@pytest.mark.live
def test_revocation_takes_effect_in_every_worker_process(gunicorn_server):
    """Two gunicorn workers: after one revokes, both report the token inactive at once."""
    import requests

    from tests.live import Call, call, on_every_worker

    server = gunicorn_server
    auth = (server.client_id, server.client_secret)
    token = requests.post(f"{server.base_url}/oauth/token", data=GRANT, auth=auth, timeout=5).json()["access_token"]

    def introspect_live() -> Call:
        introspected = call(server, "/oauth/introspect", data={"token": token}, auth=auth, timeout=5)
        assert introspected.response.status_code == 200
        return introspected

    # Both workers have seen the token active (and cached whatever they cache) before it is revoked.
    warm = on_every_worker(server, introspect_live, what="answered before the revocation")
    assert all(c.response.json()["active"] for c in warm)
    assert requests.post(f"{server.base_url}/oauth/revoke", data={"token": token}, auth=auth, timeout=5).ok
    answers = on_every_worker(server, introspect_live, what="answered after the revocation")
    assert not any(c.response.json()["active"] for c in answers)


def test_revoked_token_is_refused_by_the_management_api_at_once(service, http):
    owner = service(allowed_scopes=["clients:read"])
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {owner[2]}"}
    assert http.get("/client", **bearer).status_code == 200
    assert revoke(http, owner, owner[2]).status_code == 200
    response = http.get("/client", **bearer)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
