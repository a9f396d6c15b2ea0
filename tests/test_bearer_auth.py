"""Bearer authentication with our access tokens for any DRF API (RFC 6750, RFC 9068 §4)."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.utils import timezone
from joserfc import jws

from clients.models import Client
from tests.conftest import basic, post_token
from tokens import keys
from tokens.claims import Grant
from tokens.issuing import issue_access_token

pytestmark = pytest.mark.urls("tests.bearer_urls")

CHALLENGE = 'Bearer realm="authserver"'
INVALID = 'Bearer realm="authserver", error="invalid_token"'


def token_for(client, **grant) -> str:
    defaults = {"scopes": ("invoices:read",), "audience": ("http://testserver",), "tenants": (), "roles": ()}
    return issue_access_token(client=client, grant=Grant(**{**defaults, **grant})).access_token


def call(http, token: str | None, method: str = "get"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return getattr(http, method)("/invoices", **headers)


def test_token_from_the_token_endpoint_is_accepted(make_client, http):
    """End to end: the default audience of a client without audiences is the issuer itself."""
    client, secret = make_client(allowed_scopes=["invoices:read"])
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret))
    token = json.loads(response.content)["access_token"]
    response = call(http, token)
    assert response.status_code == 200
    assert response.json() == {"client_id": client.client_id}


def test_no_credentials_is_401_with_challenge(http, db):
    response = call(http, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


def test_other_scheme_is_not_ours(http, db):
    response = http.get("/invoices", HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"a:b").decode())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "ä"])
def test_garbage_is_401_invalid_token(http, db, token):
    response = call(http, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == INVALID


def test_missing_scope_is_403_insufficient_scope(make_client, http):
    client, _ = make_client()
    response = call(http, token_for(client, scopes=("other",)))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="authserver", error="insufficient_scope", scope="invoices:read"'
    )


def test_expired_token_is_refused(make_client, http):
    client, _ = make_client(access_token_ttl=60)
    token = issue_access_token(
        client=client,
        grant=Grant(scopes=("invoices:read",), audience=("http://testserver",), tenants=(), roles=()),
        now=int(time.time()) - 120,
    ).access_token
    assert call(http, token)["WWW-Authenticate"] == INVALID


def test_wrong_audience_or_issuer_is_refused(make_client, http, settings):
    client, _ = make_client()
    assert call(http, token_for(client, audience=("https://other.example.com",))).status_code == 401
    good = token_for(client)
    assert call(http, good).status_code == 200
    settings.ISSUER = "https://elsewhere.example.com"
    assert call(http, good).status_code == 401


def test_disabled_or_deleted_client_is_refused(make_client, http):
    client, _ = make_client()
    token = token_for(client)
    assert call(http, token).status_code == 200
    Client.objects.filter(pk=client.pk).update(enabled=False)
    assert call(http, token).status_code == 401
    Client.objects.filter(pk=client.pk).delete()
    assert call(http, token).status_code == 401


def test_tampered_token_is_refused(make_client, http):
    client, _ = make_client()
    header, payload, signature = token_for(client).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "invoices:read admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert call(http, f"{header}.{forged}.{signature}").status_code == 401


def test_wrong_typ_is_refused(make_client, http):
    """A JWT signed with our key but not typed at+jwt (RFC 9068 §4: e.g. an ID token) is refused."""
    client, _ = make_client()
    signer = keys.keyring().signer
    now = int(time.time())
    claims = {
        "iss": "http://testserver",
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": "http://testserver",
        "iat": now,
        "exp": now + 60,
        "jti": "x",
        "scope": "invoices:read",
    }
    token = jws.serialize_compact(
        {"alg": signer.algorithm, "typ": "JWT", "kid": signer.kid},
        json.dumps(claims).encode(),
        signer.key,
        algorithms=[signer.algorithm],
    )
    assert call(http, token).status_code == 401


def test_rotated_out_key_still_verifies_until_it_is_retired(make_client, http):
    client, _ = make_client()
    old_token = token_for(client)
    new_key = keys.key_rotate()
    assert call(http, old_token).status_code == 200
    assert call(http, token_for(client)).status_code == 200
    keys.key_prune(now=timezone.now() + timedelta(days=2))
    keys.keyring_invalidate()
    assert keys.keyring().signer.kid == new_key.kid
    assert call(http, old_token).status_code == 401


def test_staff_session_is_accepted_and_csrf_enforced(db):
    User.objects.create_user("op", password="pw-for-tests-only", is_staff=True)
    http = HttpClient(enforce_csrf_checks=True)
    assert http.login(username="op", password="pw-for-tests-only")
    assert http.get("/invoices").status_code == 200
    assert http.post("/invoices").status_code == 403


def test_non_staff_session_is_forbidden(db):
    User.objects.create_user("user", password="pw-for-tests-only")
    http = HttpClient()
    assert http.login(username="user", password="pw-for-tests-only")
    assert http.get("/invoices").status_code == 403


def test_bearer_with_token_wins_over_session(make_client, db):
    """A request carrying a bad token is refused even from a logged-in staff browser."""
    User.objects.create_user("op2", password="pw-for-tests-only", is_staff=True)
    http = HttpClient()
    assert http.login(username="op2", password="pw-for-tests-only")
    assert call(http, "garbage").status_code == 401


def test_revoked_token_is_refused_at_once(make_client, http):
    client, secret = make_client(allowed_scopes=["invoices:read"])
    token = json.loads(
        post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret)).content
    )["access_token"]
    assert call(http, token).status_code == 200
    revoked = post_token(http, {"token": token}, path="/oauth/revoke", authorization=basic(client.client_id, secret))
    assert revoked.status_code == 200
    response = call(http, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == INVALID
