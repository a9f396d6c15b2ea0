"""SeaCat Auth's management requests against us (DESIGN §9.6), and a client's owner."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client as HttpClient

from clients.models import AuditEvent, Client
from tests.conftest import assert_oauth_error, basic, post_token

GRANT = {"grant_type": "client_credentials"}
# SeaCat Auth's documentation, "Client credentials": the body of PUT /client/{client_id}, as written there.
SEACAT_PUT_BODY = {"seacatauth_credentials": True, "token_endpoint_auth_method": "client_secret_basic"}


def api(http: HttpClient, method: str, path: str, body: Any = None, *, auth: str) -> Any:
    data = "" if body is None else json.dumps(body)
    return http.generic(method, path, data, content_type="application/json", HTTP_AUTHORIZATION=auth)


def json_body(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.fixture
def writer(http: HttpClient, make_client: Callable[..., tuple[Client, str]]) -> str:
    client, secret = make_client(client_id="ops-bot", allowed_scopes=["clients:read", "clients:write"])
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    return "Bearer " + json.loads(response.content)["access_token"]


def test_seacats_documented_put_body_turns_on_the_client_credentials_grant(http, writer):
    created = json_body(api(http, "POST", "/client", {"client_id": "svc", "seacatauth_credentials": False,
                                                      "scope": "read"}, auth=writer), 201)
    assert (created["grant_types"], created["seacatauth_credentials"]) == ([], False)
    secret = created["client_secret"]
    assert_oauth_error(post_token(http, GRANT, authorization=basic("svc", secret)), 400, "unauthorized_client")

    updated = json_body(api(http, "PUT", "/client/svc", SEACAT_PUT_BODY, auth=writer), 200)
    assert (updated["grant_types"], updated["seacatauth_credentials"]) == (["client_credentials"], True)
    assert updated["token_endpoint_auth_method"] == "client_secret_basic"
    assert updated["scope"] == "read"  # the fields not sent keep their values
    read = json_body(api(http, "GET", "/client/svc", auth=writer), 200)
    assert read["seacatauth_credentials"] is True
    assert post_token(http, GRANT, authorization=basic("svc", secret)).status_code == 200
    # client_secret_basic now admits nothing else.
    assert_oauth_error(post_token(http, {**GRANT, "client_id": "svc", "client_secret": secret}), 401,
                       "invalid_client")

    off = json_body(api(http, "PATCH", "/client/svc", {"seacatauth_credentials": False}, auth=writer), 200)
    assert (off["grant_types"], off["seacatauth_credentials"]) == ([], False)


@pytest.mark.parametrize(
    ("request_body", "grant_types"),
    [
        ({"seacatauth_credentials": True}, ["client_credentials"]),
        ({}, ["client_credentials"]),
        ({"seacatauth_credentials": True, "grant_types": ["client_credentials"]}, ["client_credentials"]),
        ({"seacatauth_credentials": False, "grant_types": []}, []),
    ],
)
def test_create_accepts_the_flag_beside_grant_types(http, writer, request_body, grant_types):
    data = json_body(api(http, "POST", "/client", {"client_id": "svc", **request_body}, auth=writer), 201)
    assert data["grant_types"] == grant_types
    assert data["seacatauth_credentials"] is bool(grant_types)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    "request_body",
    [
        {"seacatauth_credentials": True, "grant_types": []},
        {"seacatauth_credentials": False, "grant_types": ["client_credentials"]},
    ],
)
def test_a_flag_that_disagrees_with_grant_types_is_400(http, writer, make_client, method, request_body):
    make_client(client_id="svc")
    path = "/client" if method == "POST" else "/client/svc"
    body = {"client_id": "new" if method == "POST" else "svc", **request_body}
    assert json_body(api(http, method, path, body, auth=writer), 400) == {
        "seacatauth_credentials": ['Must agree with grant_types (true exactly when it holds "client_credentials").']
    }
    assert Client.objects.get(client_id="svc").grant_types == ["client_credentials"]
    assert not Client.objects.filter(client_id="new").exists()


@pytest.mark.parametrize("value", ["yes please", None, [True]])
def test_a_flag_that_is_not_a_boolean_is_400(http, writer, make_client, value):
    make_client(client_id="svc")
    errors = json_body(api(http, "PATCH", "/client/svc", {"seacatauth_credentials": value}, auth=writer), 400)
    assert set(errors) == {"seacatauth_credentials"}


def test_post_with_an_existing_client_id_is_409(http, writer, make_client):
    make_client(client_id="svc")
    response = api(http, "POST", "/client", {"client_id": "svc", "seacatauth_credentials": True}, auth=writer)
    assert json_body(response, 409) == {"detail": "A client 'svc' already exists."}
    assert Client.objects.filter(client_id="svc").count() == 1


def test_the_owner_is_set_changed_and_cleared_through_the_api(http, writer, django_user_model):
    django_user_model.objects.create_user("alice")
    django_user_model.objects.create_user("bob")
    created = json_body(api(http, "POST", "/client", {"client_id": "svc", "owner": "alice"}, auth=writer), 201)
    assert created["owner"] == "alice"
    assert json_body(api(http, "PUT", "/client/svc", {"owner": "bob"}, auth=writer), 200)["owner"] == "bob"
    assert Client.objects.get(client_id="svc").user.username == "bob"
    assert json_body(api(http, "PATCH", "/client/svc", {"owner": None}, auth=writer), 200)["owner"] is None
    assert Client.objects.get(client_id="svc").user is None
    changes = [e.changes["owner"] for e in AuditEvent.objects.filter(action="client.updated").order_by("id")]
    assert changes == [["alice", "bob"], ["bob", None]]


def test_an_unknown_owner_is_400_and_changes_nothing(http, writer, django_user_model):
    json_body(api(http, "POST", "/client", {"client_id": "svc"}, auth=writer), 201)
    assert json_body(api(http, "PATCH", "/client/svc", {"owner": "mallory"}, auth=writer), 400) == {
        "owner": ["No user 'mallory'."]}
    assert json_body(api(http, "POST", "/client", {"client_id": "x", "owner": "mallory"}, auth=writer), 400) == {
        "owner": ["No user 'mallory'."]}
    assert Client.objects.get(client_id="svc").user is None
