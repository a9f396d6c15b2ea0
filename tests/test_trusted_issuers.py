"""Trusted issuers (workload identity federation) as operators manage them: the management
API (``/trusted_issuer``), the admin page and ``manage.py addissuer``, each through the
real stack and each leaving audit events."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client as HttpClient

from clients.models import AuditEvent, Client, TrustedIssuer
from clients.services import trusted_issuer_create
from tests.conftest import basic, post_token
from tests.workload_issuer import jwk_set, new_key

READ, WRITE = "clients:read", "clients:write"
CHALLENGE = 'Bearer realm="authserver"'
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
CLUSTER = "https://cluster.example.com"

MakeClient = Callable[..., tuple[Client, Any]]


def call(http: HttpClient, method: str, path: str, body: Any = None, *, auth: str | None = None,
         raw: str | None = None, **extra: Any) -> Any:
    data = raw if raw is not None else "" if body is None else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return http.generic(method, path, data, content_type="application/json", **headers, **extra)


def body(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def bearer(http: HttpClient, make_client: MakeClient, *scopes: str, client_id: str) -> str:
    """A real access token from /oauth/token, as an ``Authorization`` header value."""
    client, secret = make_client(client_id=client_id, allowed_scopes=list(scopes))
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client_id, secret))
    assert response.status_code == 200, response.content
    return "Bearer " + json.loads(response.content)["access_token"]


@pytest.fixture
def writer(http: HttpClient, make_client: MakeClient) -> str:
    return bearer(http, make_client, WRITE, client_id="api-writer")


@pytest.fixture
def reader(http: HttpClient, make_client: MakeClient) -> str:
    return bearer(http, make_client, READ, client_id="api-reader")


@pytest.fixture
def prod(db: None) -> TrustedIssuer:
    """The trusted issuer the tests manage."""
    return trusted_issuer_create(name="prod", issuer=CLUSTER, audiences=["https://auth.example.com"])


def iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def shown(record: TrustedIssuer) -> dict[str, Any]:
    """The API's document of ``record`` as stored."""
    record.refresh_from_db()
    return {
        "name": record.name, "issuer": record.issuer, "jwks_uri": record.jwks_uri, "jwks": record.jwks,
        "audiences": record.audiences, "max_token_lifetime": record.max_token_lifetime, "enabled": record.enabled,
        "created": iso(record.created), "updated": iso(record.updated),
    }


def issuer_events() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (e.actor, e.action, e.target, e.changes)
        for e in AuditEvent.objects.filter(action__startswith="trusted_issuer.").order_by("id")
    ]


# --- routes and who may call them -------------------------------------------------------------

ROUTES = [
    ("GET", "/trusted_issuer"), ("POST", "/trusted_issuer"),
    ("GET", "/trusted_issuer/prod"), ("PUT", "/trusted_issuer/prod"), ("PATCH", "/trusted_issuer/prod"),
    ("DELETE", "/trusted_issuer/prod"),
]
GOOD_BODIES = {
    ("POST", "/trusted_issuer"): {"name": "ci", "issuer": "https://token.actions.githubusercontent.com"},
    ("PUT", "/trusted_issuer/prod"): {"enabled": False},
    ("PATCH", "/trusted_issuer/prod"): {"max_token_lifetime": "1h"},
}
GOOD_STATUS = {"GET": 200, "POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_answers_with_and_without_slash(http, writer, prod, method, path, slash):
    response = call(http, method, path + slash, GOOD_BODIES.get((method, path)), auth=writer)
    assert response.status_code == GOOD_STATUS[method], response.content
    if method != "DELETE":
        assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_credentials_is_401_with_bearer_challenge(http, prod, method, path):
    response = call(http, method, path, GOOD_BODIES.get((method, path)))
    assert body(response, 401) == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == CHALLENGE
    assert TrustedIssuer.objects.get() == prod and not issuer_events()[1:]


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] != "GET"])
def test_a_read_token_cannot_write(http, reader, prod, method, path):
    before = shown(prod)
    response = call(http, method, path, GOOD_BODIES.get((method, path)), auth=reader)
    assert body(response, 403) == {"detail": "The access token lacks the scope clients:write."}
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="insufficient_scope", scope="clients:write"'
    assert shown(prod) == before and TrustedIssuer.objects.count() == 1


@pytest.mark.parametrize("path", ["/trusted_issuer", "/trusted_issuer/prod"])
def test_read_and_write_tokens_both_read_and_other_scopes_cannot(http, make_client, reader, writer, prod, path):
    for auth in (reader, writer):
        assert call(http, "GET", path, auth=auth).status_code == 200
    other = bearer(http, make_client, "invoices:read", client_id="other")
    response = call(http, "GET", path, auth=other)
    assert body(response, 403) == {"detail": "The access token lacks the scope clients:read."}
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="insufficient_scope", scope="clients:read"'


def test_a_staff_session_manages_issuers_with_csrf(django_user_model, prod):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.get("/admin/login/")
    browser.force_login(django_user_model.objects.create_user("operator", password="x" * 12, is_staff=True))
    assert body(call(browser, "GET", "/trusted_issuer/prod"), 200)["name"] == "prod"
    refused = call(browser, "PATCH", "/trusted_issuer/prod", {"enabled": False})
    assert body(refused, 403) == {"detail": "CSRF Failed: CSRF token missing."}
    csrf = browser.cookies["csrftoken"].value
    assert body(call(browser, "PATCH", "/trusted_issuer/prod", {"enabled": False}, HTTP_X_CSRFTOKEN=csrf),
                200)["enabled"] is False
    assert issuer_events()[-1][:2] == ("user:operator", "trusted_issuer.updated")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_an_unknown_issuer_is_404_json(http, writer, prod, method):
    response = call(http, method, "/trusted_issuer/nope", {"enabled": False}, auth=writer)
    assert body(response, 404) == {"detail": "No trusted issuer 'nope'."}
    assert shown(prod)["enabled"] is True


def test_a_name_no_issuer_can_have_is_404_json(http, writer):
    assert body(call(http, "GET", "/trusted_issuer/not%20a%20name", auth=writer), 404)["error"] == "not_found"


def test_a_method_a_route_lacks_is_405(http, writer, prod):
    assert body(call(http, "POST", "/trusted_issuer/prod", {}, auth=writer), 405) == {
        "detail": 'Method "POST" not allowed.'
    }


# --- create -----------------------------------------------------------------------------------


def test_create_returns_every_field(http, writer):
    key = new_key("ES256")
    request = {
        "name": "prod-cluster", "issuer": "https://kubernetes.default.svc.cluster.local", "jwks": jwk_set(key),
        "audiences": ["https://auth.example.com", "authserver"], "max_token_lifetime": "1h", "enabled": False,
    }
    response = call(http, "POST", "/trusted_issuer", request, auth=writer)
    created = body(response, 201)
    record = TrustedIssuer.objects.get()
    assert created == shown(record) == {
        **request, "jwks_uri": "", "max_token_lifetime": 3600, "created": created["created"],
        "updated": created["updated"],
    }
    assert TIMESTAMP.fullmatch(created["created"]) and TIMESTAMP.fullmatch(created["updated"])
    assert response["Location"] == "/trusted_issuer/prod-cluster"
    assert body(call(http, "GET", "/trusted_issuer/prod-cluster", auth=writer), 200) == created


def test_create_with_name_and_issuer_only_takes_the_defaults(http, writer):
    created = body(call(http, "POST", "/trusted_issuer", {"name": "ci", "issuer": CLUSTER}, auth=writer), 201)
    assert {k: v for k, v in created.items() if k not in ("created", "updated")} == {
        "name": "ci", "issuer": CLUSTER, "jwks_uri": "", "jwks": None, "audiences": [],
        "max_token_lifetime": 86400, "enabled": True,
    }


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8080", "http://localhost/realms/ci", "http://[::1]:6443", "https://gitlab.example"]
)
def test_create_accepts_https_and_loopback_http_issuers(http, writer, issuer):
    assert body(call(http, "POST", "/trusted_issuer", {"name": "a", "issuer": issuer}, auth=writer), 201)[
        "issuer"] == issuer


def test_create_a_spiffe_trust_domain_with_its_bundle(http, writer):
    bundle = jwk_set(new_key("ES256"), new_key("RS256"))
    request = {"name": "mesh", "issuer": "spiffe://prod.example.org", "jwks": bundle}
    assert body(call(http, "POST", "/trusted_issuer", request, auth=writer), 201)["jwks"] == bundle
    request = {"name": "mesh2", "issuer": "spiffe://staging.example.org", "jwks_uri": "https://spire.example/keys"}
    assert body(call(http, "POST", "/trusted_issuer", request, auth=writer), 201)["jwks_uri"] == request["jwks_uri"]


@pytest.mark.parametrize(
    ("value", "seconds"), [(3600, 3600), ("1h", 3600), ("24h", 86400), (" 90s ", 90), ("2d", 172800), ("300", 300)]
)
def test_max_token_lifetime_takes_seconds_or_a_duration(http, writer, value, seconds):
    request = {"name": "a", "issuer": CLUSTER, "max_token_lifetime": value}
    assert body(call(http, "POST", "/trusted_issuer", request, auth=writer), 201)["max_token_lifetime"] == seconds


PRIVATE = new_key("ES256")
LIFETIME_ERROR = {
    "max_token_lifetime": ["Expected a positive number of seconds or a duration such as 90s, 10m, 1h, 1d."]
}


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        pytest.param({"name": "a", "issuer": "http://cluster.example.com"},
                     {"issuer": ["The issuer must be https (plain http only for a loopback host)."]}, id="http issuer"),
        pytest.param({"name": "a", "issuer": "cluster.example.com"},
                     {"issuer": ["The issuer must be an https URL."]}, id="not a URL"),
        pytest.param({"name": "a", "issuer": CLUSTER + "?x=1"}, {"issuer": ["The issuer must have no query."]},
                     id="query"),
        pytest.param({"name": "a", "issuer": "spiffe://prod.example.org"},
                     {"jwks": ["A SPIFFE trust domain has no discovery: give its bundle as jwks or jwks_uri."]},
                     id="spiffe without keys"),
        pytest.param({"name": "a", "issuer": "spiffe://Prod Domain"},
                     {"issuer": ["A SPIFFE issuer is spiffe://<trust domain> (lowercase letters, digits, . - _)."],
                      "jwks": ["A SPIFFE trust domain has no discovery: give its bundle as jwks or jwks_uri."]},
                     id="bad trust domain"),
        pytest.param({"name": "a", "issuer": CLUSTER, "jwks": {"keys": [PRIVATE.private_jwk()]}},
                     {"jwks": ["The JWK Set holds a private or symmetric key; only public keys belong in it."]},
                     id="private key"),
        pytest.param({"name": "a", "issuer": CLUSTER, "jwks": [PRIVATE.public_jwk()]},
                     {"jwks": ['A JWK Set is a JSON object with a "keys" array (RFC 7517 §5).']}, id="jwks not a set"),
        pytest.param({"name": "a", "issuer": CLUSTER, "jwks": jwk_set(PRIVATE), "jwks_uri": CLUSTER + "/keys"},
                     {"jwks_uri": ["Give jwks or jwks_uri, not both."]}, id="jwks and jwks_uri"),
        pytest.param({"name": "a", "issuer": CLUSTER, "jwks_uri": "http://keys.example.com/jwks"},
                     {"jwks_uri": ["The URL must be https (plain http only for a loopback host)."]},
                     id="http jwks_uri"),
        pytest.param({"name": "a", "issuer": CLUSTER, "audiences": ["has space"]},
                     {"audiences": ["Audiences are printable ASCII without spaces (e.g. https://api.example.com)."]},
                     id="audience"),
        pytest.param({"name": "a", "issuer": CLUSTER, "audiences": "https://auth.example.com"},
                     {"audiences": ['Expected a list of items but got type "str".']}, id="audiences not a list"),
        pytest.param({"name": "a", "issuer": CLUSTER, "max_token_lifetime": "forever"}, LIFETIME_ERROR, id="lifetime"),
        pytest.param({"name": "a", "issuer": CLUSTER, "max_token_lifetime": 0}, LIFETIME_ERROR, id="zero lifetime"),
        pytest.param({"name": "a", "issuer": CLUSTER, "max_token_lifetime": "-1h"}, LIFETIME_ERROR, id="negative"),
        pytest.param({"name": "a", "issuer": CLUSTER, "max_token_lifetime": None},
                     {"max_token_lifetime": ["This field may not be null."]}, id="null lifetime"),
        pytest.param({"name": "a", "issuer": CLUSTER, "max_token_lifetime": 2**31},
                     {"max_token_lifetime": ["At most 2147483647 seconds."]}, id="huge lifetime"),
        pytest.param({"name": "a", "issuer": CLUSTER, "enabled": "maybe"},
                     {"enabled": ["Must be a valid boolean."]}, id="enabled"),
        pytest.param({"name": "has space", "issuer": CLUSTER}, {"name": ["Letters, digits, - and _."]}, id="name"),
        pytest.param({"issuer": CLUSTER}, {"name": ["This field is required."]}, id="no name"),
        pytest.param({"name": "a"}, {"issuer": ["This field is required."]}, id="no issuer"),
        pytest.param({"name": "a", "issuer": CLUSTER, "audience": ["x"]}, {"audience": ["Unknown field."]},
                     id="unknown field"),
        pytest.param({"name": "a", "issuer": CLUSTER, "created": "2026-01-01T00:00:00Z"},
                     {"created": ["This field is read-only."]}, id="read-only field"),
    ],
)
def test_create_with_an_invalid_field_is_400_naming_it(http, writer, request_body, errors):
    assert body(call(http, "POST", "/trusted_issuer", request_body, auth=writer), 400) == errors
    assert not TrustedIssuer.objects.exists() and not issuer_events()


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({"name": "prod", "issuer": "https://other.example.com"},
         {"name": ["A trusted issuer named 'prod' already exists."]}),
        ({"name": "other", "issuer": CLUSTER}, {"issuer": ["The trusted issuer 'prod' already has this issuer."]}),
        ({"name": "prod", "issuer": CLUSTER}, {"name": ["A trusted issuer named 'prod' already exists."],
                                              "issuer": ["The trusted issuer 'prod' already has this issuer."]}),
    ],
)
def test_create_with_a_taken_name_or_issuer_is_400(http, writer, prod, request_body, errors):
    assert body(call(http, "POST", "/trusted_issuer", request_body, auth=writer), 400) == errors
    assert list(TrustedIssuer.objects.all()) == [prod]


@pytest.mark.parametrize(("raw", "status"), [("[]", 400), ("not json", 400), ('"prod"', 400)])
def test_a_body_that_is_not_a_json_object_is_refused(http, writer, raw, status):
    assert call(http, "POST", "/trusted_issuer", raw=raw, auth=writer).status_code == status
    assert not TrustedIssuer.objects.exists()


# --- read and list ----------------------------------------------------------------------------


def test_list_pages_by_name(http, reader):
    for name in ("gamma", "alpha", "beta"):
        trusted_issuer_create(name=name, issuer=f"https://{name}.example.com")
    listed = body(call(http, "GET", "/trusted_issuer?limit=2", auth=reader), 200)
    assert [item["name"] for item in listed["results"]] == ["alpha", "beta"]
    assert listed["count"] == 3 and listed["previous"] is None
    assert listed["next"].endswith("/trusted_issuer?limit=2&offset=2")
    rest = body(call(http, "GET", "/trusted_issuer?limit=2&offset=2", auth=reader), 200)
    assert rest["results"] == [shown(TrustedIssuer.objects.get(name="gamma"))] and rest["next"] is None


def test_read_shows_the_stored_issuer(http, reader, prod):
    assert body(call(http, "GET", "/trusted_issuer/prod", auth=reader), 200) == shown(prod)


# --- update -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_changes_only_the_fields_sent(http, writer, prod, method):
    before = shown(prod)
    updated = body(call(http, method, "/trusted_issuer/prod", {"max_token_lifetime": "10m"}, auth=writer), 200)
    assert updated == shown(prod) == {**before, "max_token_lifetime": 600, "updated": updated["updated"]}


def test_update_sets_every_field(http, writer, prod):
    key = new_key("RS256")
    request = {
        "issuer": "https://new-cluster.example.com", "jwks": jwk_set(key), "audiences": ["aud-1"],
        "max_token_lifetime": 7200, "enabled": False,
    }
    updated = body(call(http, "PUT", "/trusted_issuer/prod", request, auth=writer), 200)
    assert updated == shown(prod) == {**shown(prod), **request}
    back = body(call(http, "PATCH", "/trusted_issuer/prod", {"jwks": None, "jwks_uri": CLUSTER + "/keys",
                                                              "audiences": []}, auth=writer), 200)
    assert (back["jwks"], back["jwks_uri"], back["audiences"]) == (None, CLUSTER + "/keys", [])


def test_the_document_read_can_be_sent_back_without_its_read_only_fields(http, writer, prod):
    document = body(call(http, "GET", "/trusted_issuer/prod", auth=writer), 200)
    refused = body(call(http, "PUT", "/trusted_issuer/prod", document, auth=writer), 400)
    assert refused == {"created": ["This field is read-only."], "updated": ["This field is read-only."]}
    del document["created"], document["updated"]
    assert body(call(http, "PUT", "/trusted_issuer/prod", document, auth=writer), 200)["name"] == "prod"


def test_a_name_in_the_body_renames_and_follows_into_clients(http, writer, make_client, prod):
    other = trusted_issuer_create(name="ci", issuer="https://ci.example.com")
    identities = [
        {"trusted_issuer": "prod", "subject": "system:serviceaccount:payments:*",
         "claims": {"/kubernetes.io/namespace": "payments"}},
        {"trusted_issuer": "ci", "subject": "repo:acme/app:ref:refs/heads/*"},
    ]
    client, _ = make_client(client_id="payments", federated_identities=identities)
    bystander, _ = make_client(client_id="bystander", federated_identities=[identities[1]])

    renamed = body(call(http, "PUT", "/trusted_issuer/prod", {"name": "prod-eu"}, auth=writer), 200)
    assert renamed["name"] == "prod-eu" and renamed["issuer"] == CLUSTER
    client.refresh_from_db()
    assert client.federated_identities == [{**identities[0], "trusted_issuer": "prod-eu"}, identities[1]]
    bystander.refresh_from_db()
    assert bystander.federated_identities == [identities[1]]
    assert body(call(http, "GET", "/trusted_issuer/prod", auth=writer), 404) == {
        "detail": "No trusted issuer 'prod'."
    }
    assert body(call(http, "GET", "/trusted_issuer/prod-eu", auth=writer), 200) == renamed
    assert body(call(http, "GET", "/client/payments", auth=writer), 200)["federated_identities"][0][
        "trusted_issuer"] == "prod-eu"
    assert TrustedIssuer.objects.get(pk=other.pk).name == "ci"


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({"name": "ci"}, {"name": ["A trusted issuer named 'ci' already exists."]}),
        ({"issuer": "https://ci.example.com"}, {"issuer": ["The trusted issuer 'ci' already has this issuer."]}),
        ({"issuer": "http://cluster.example.com"},
         {"issuer": ["The issuer must be https (plain http only for a loopback host)."]}),
        ({"jwks_uri": CLUSTER + "/keys", "jwks": jwk_set(PRIVATE)}, {"jwks_uri": ["Give jwks or jwks_uri, not both."]}),
        ({"jwks": {"keys": [PRIVATE.private_jwk()]}},
         {"jwks": ["The JWK Set holds a private or symmetric key; only public keys belong in it."]}),
        ({"max_token_lifetime": "1w"}, LIFETIME_ERROR),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"issuer": "spiffe://prod.example.org"},
         {"jwks": ["A SPIFFE trust domain has no discovery: give its bundle as jwks or jwks_uri."]}),
        ({"colour": "blue"}, {"colour": ["Unknown field."]}),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_an_invalid_field_is_400_and_changes_nothing(http, writer, make_client, prod, method,
                                                                request_body, errors):
    trusted_issuer_create(name="ci", issuer="https://ci.example.com")
    client, _ = make_client(client_id="payments", federated_identities=[{"trusted_issuer": "prod", "subject": "s"}])
    before, events = shown(prod), issuer_events()
    assert body(call(http, method, "/trusted_issuer/prod", request_body, auth=writer), 400) == errors
    assert shown(prod) == before and issuer_events() == events
    client.refresh_from_db()
    assert client.federated_identities == [{"trusted_issuer": "prod", "subject": "s"}]


# --- delete -----------------------------------------------------------------------------------


def test_delete_removes_the_issuer(http, writer, prod):
    response = call(http, "DELETE", "/trusted_issuer/prod", auth=writer)
    assert response.status_code == 204 and response.content == b""
    assert not TrustedIssuer.objects.exists()
    assert body(call(http, "DELETE", "/trusted_issuer/prod", auth=writer), 404) == {
        "detail": "No trusted issuer 'prod'."
    }


# --- audit trail ------------------------------------------------------------------------------


def test_each_write_leaves_an_audit_event_naming_the_caller(http, writer):
    key = new_key("ES256")
    created = {"name": "prod", "issuer": CLUSTER, "jwks": jwk_set(key), "max_token_lifetime": "1h"}
    call(http, "POST", "/trusted_issuer", created, auth=writer)
    call(http, "PATCH", "/trusted_issuer/prod", {"name": "prod-eu", "enabled": False}, auth=writer)
    call(http, "PATCH", "/trusted_issuer/prod-eu", {"audiences": ["a", "b"]}, auth=writer)
    call(http, "DELETE", "/trusted_issuer/prod-eu", auth=writer)
    assert issuer_events() == [
        ("client:api-writer", "trusted_issuer.created", "prod", {
            "issuer": CLUSTER, "jwks": jwk_set(key), "jwks_uri": "", "audiences": [], "max_token_lifetime": 3600,
            "enabled": True,
        }),
        ("client:api-writer", "trusted_issuer.updated", "prod-eu",
         {"name": ["prod", "prod-eu"], "enabled": [True, False]}),
        ("client:api-writer", "trusted_issuer.updated", "prod-eu", {"audiences": [[], ["a", "b"]]}),
        ("client:api-writer", "trusted_issuer.deleted", "prod-eu", {}),
    ]


# --- OpenAPI ----------------------------------------------------------------------------------


def test_the_schema_documents_the_issuer_routes_and_shapes(http):
    document = json.loads(call(http, "GET", "/api/schema?format=json").content)
    assert set(document["paths"]["/trusted_issuer"]) == {"get", "post"}
    assert set(document["paths"]["/trusted_issuer/{name}"]) == {"get", "put", "patch", "delete"}
    schemas = document["components"]["schemas"]
    assert list(schemas["TrustedIssuer"]["properties"]) == [
        "name", "issuer", "jwks_uri", "jwks", "audiences", "max_token_lifetime", "enabled", "created", "updated",
    ]
    assert set(schemas["TrustedIssuerInput"]["properties"]) == set(schemas["TrustedIssuer"]["properties"]) - {
        "created", "updated"
    }
    assert set(schemas["TrustedIssuerInput"]["required"]) == {"name", "issuer"}
    assert set(schemas["TrustedIssuerUpdate"]["properties"]) == set(schemas["TrustedIssuerInput"]["properties"])
    assert "required" not in schemas["TrustedIssuerUpdate"]
    put = document["paths"]["/trusted_issuer/{name}"]["put"]["requestBody"]["content"]["application/json"]
    assert put["schema"] == {"$ref": "#/components/schemas/TrustedIssuerUpdate"}
    assert document["paths"]["/trusted_issuer"]["get"]["tags"] == ["trusted_issuer"]


# --- admin ------------------------------------------------------------------------------------

ADMIN = "/admin/clients/trustedissuer/"


def admin_form(**overrides: Any) -> dict[str, Any]:
    data = {"name": "prod", "issuer": CLUSTER, "enabled": "on", "jwks_uri": "", "jwks": "", "audiences": "",
            "max_token_lifetime": "24h"}
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def test_admin_lists_name_issuer_enabled_and_audiences(admin_client, prod):
    trusted_issuer_create(name="ci", issuer="https://ci.example.com", enabled=False)
    response = admin_client.get(ADMIN)
    assert response.status_code == 200
    assert [r.name for r in response.context["cl"].result_list] == ["ci", "prod"]
    html = response.content.decode()
    for text in ("column-name", "column-issuer", "column-enabled", "column-audience_list", CLUSTER,
                 "https://auth.example.com", "this server"):
        assert text in html, text
    filtered = admin_client.get(ADMIN + "?enabled__exact=0")
    assert [r.name for r in filtered.context["cl"].result_list] == ["ci"]
    assert [r.name for r in admin_client.get(ADMIN + "?q=cluster").context["cl"].result_list] == ["prod"]


def test_admin_adds_an_issuer_from_pasted_pem_through_the_services(admin_client):
    key = new_key("ES256")
    response = admin_client.post(ADMIN + "add/", admin_form(
        jwks=key.public_pem().decode(), audiences="https://auth.example.com\nauthserver",
        max_token_lifetime="1h",
    ))
    assert response.status_code == 302, response.content[:3000]
    record = TrustedIssuer.objects.get()
    (registered,) = record.jwks["keys"]
    assert registered["kid"] == key.public_jwk()["kid"]  # a pasted PEM key is named by its thumbprint
    assert (record.audiences, record.max_token_lifetime, record.enabled) == (
        ["https://auth.example.com", "authserver"], 3600, True
    )
    assert [e[:3] for e in issuer_events()] == [("user:admin", "trusted_issuer.created", "prod")]
    page = admin_client.get(f"{ADMIN}{record.pk}/change/").content.decode()
    assert registered["kid"] in page and "EC P-256" in page and "registered-keys" in page
    assert "https://auth.example.com\nauthserver</textarea>" in page  # one audience per line
    assert 'value="1h"' in page


def test_admin_add_page_offers_the_default_lifetime(admin_client):
    page = admin_client.get(ADMIN + "add/").content.decode()
    assert 'value="24h"' in page and "registered-keys" not in page


def test_admin_changes_an_issuer_through_the_services_and_a_rename_follows_into_clients(admin_client, make_client,
                                                                                          prod):
    key = new_key("RS256")
    client, _ = make_client(client_id="payments", federated_identities=[{"trusted_issuer": "prod", "subject": "s"}])
    response = admin_client.post(f"{ADMIN}{prod.pk}/change/", admin_form(
        name="prod-eu", enabled=None, jwks=json.dumps(jwk_set(key)), audiences="https://auth.example.com",
    ))
    assert response.status_code == 302, response.content[:3000]
    prod.refresh_from_db()
    assert (prod.name, prod.enabled, prod.jwks) == ("prod-eu", False, jwk_set(key))
    client.refresh_from_db()
    assert client.federated_identities == [{"trusted_issuer": "prod-eu", "subject": "s"}]
    assert issuer_events() == [
        ("system", "trusted_issuer.created", "prod", issuer_events()[0][3]),
        ("user:admin", "trusted_issuer.updated", "prod-eu", {
            "name": ["prod", "prod-eu"], "enabled": [True, False], "jwks": [None, jwk_set(key)],
        }),
    ]
    page = admin_client.get(f"{ADMIN}{prod.pk}/change/").content.decode()
    assert key.kid in page and "RSA 2048" in page


def test_admin_saving_an_unchanged_page_writes_nothing(admin_client, prod):
    data = admin_form(audiences="https://auth.example.com", max_token_lifetime="1d")
    assert admin_client.post(f"{ADMIN}{prod.pk}/change/", data).status_code == 302
    assert [e[1] for e in issuer_events()] == ["trusted_issuer.created"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"jwks": PRIVATE.private_pem().decode()}, "jwks", "That is a private key"),
        ({"jwks": json.dumps({"keys": [PRIVATE.private_jwk()]})}, "jwks", "private or symmetric key"),
        ({"jwks": "not json"}, "jwks", "Paste a JWK Set (JSON) or PEM public keys."),
        ({"issuer": "http://cluster.example.com"}, "issuer", "must be https"),
        ({"issuer": "spiffe://mesh.example"}, "jwks", "A SPIFFE trust domain has no discovery"),
        ({"jwks": json.dumps(jwk_set(PRIVATE)), "jwks_uri": CLUSTER + "/keys"}, "jwks_uri", "not both"),
        ({"max_token_lifetime": "forever"}, "max_token_lifetime", "Not a duration: forever."),
        ({"max_token_lifetime": ""}, "max_token_lifetime", "This field is required."),
        ({"audiences": "has\"quote ok\nbad\x7f"}, "audiences", "Audiences are printable ASCII"),
        ({"name": "ci"}, "name", "already exists"),
        ({"issuer": "https://ci.example.com"}, "issuer", "already exists"),
    ],
)
def test_admin_refuses_invalid_input_and_saves_nothing(admin_client, overrides, field, message):
    trusted_issuer_create(name="ci", issuer="https://ci.example.com")
    response = admin_client.post(ADMIN + "add/", admin_form(**overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert list(TrustedIssuer.objects.values_list("name", flat=True)) == ["ci"]
    assert [e[1] for e in issuer_events()] == ["trusted_issuer.created"]
    if "private" in str(overrides.get("jwks", "")).lower() or '"d"' in str(overrides.get("jwks", "")):
        page = response.content.decode()  # a refused private key is never shown back
        assert "PRIVATE KEY" not in page and PRIVATE.private_jwk()["d"] not in page


def test_admin_deletes_through_the_services(admin_client, prod):
    other = trusted_issuer_create(name="ci", issuer="https://ci.example.com")
    assert admin_client.post(f"{ADMIN}{prod.pk}/delete/", {"post": "yes"}).status_code == 302
    bulk = {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"}
    assert admin_client.post(ADMIN, bulk).status_code == 302
    assert not TrustedIssuer.objects.exists()
    assert [e[:3] for e in issuer_events()[2:]] == [
        ("user:admin", "trusted_issuer.deleted", "prod"), ("user:admin", "trusted_issuer.deleted", "ci"),
    ]


# --- manage.py addissuer ----------------------------------------------------------------------


def addissuer(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("addissuer", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_addissuer_registers_and_prints_it(db):
    out, err = addissuer("prod", "--issuer", CLUSTER)
    assert out == (
        "Trusted issuer: prod\n"
        f"Issuer: {CLUSTER}\n"
        f"Keys: from {CLUSTER}/.well-known/openid-configuration\n"
        "Audiences: this server (ISSUER)\n"
        "Max token lifetime: 1d\n"
        "Enabled: yes\n"
    )
    assert err == ""
    record = TrustedIssuer.objects.get()
    assert (record.jwks, record.jwks_uri, record.audiences, record.max_token_lifetime, record.enabled) == (
        None, "", [], 86400, True
    )
    assert issuer_events()[0][:3] == ("cli", "trusted_issuer.created", "prod")


def test_addissuer_sets_every_option(db, tmp_path):
    out, _ = addissuer(
        "ci", "--issuer", "https://token.actions.githubusercontent.com", "--jwks-uri", "https://keys.example/jwks",
        "--audience", "https://auth.example.com", "--audience", "a b", "--max-lifetime", "10m", "--disabled",
    )
    record = TrustedIssuer.objects.get()
    assert (record.jwks_uri, record.audiences, record.max_token_lifetime, record.enabled) == (
        "https://keys.example/jwks", ["https://auth.example.com", "a", "b"], 600, False
    )
    assert "Keys: https://keys.example/jwks\n" in out and "Audiences: https://auth.example.com a b\n" in out
    assert "Max token lifetime: 10m\n" in out and "Enabled: no\n" in out


@pytest.mark.parametrize("form", ["pem", "json"])
def test_addissuer_reads_keys_from_a_jwks_or_pem_file(db, tmp_path, form):
    key = new_key("ES256")
    path = tmp_path / "keys"
    path.write_bytes(key.public_pem() if form == "pem" else json.dumps(jwk_set(key)).encode())
    out, _ = addissuer("mesh", "--issuer", "spiffe://mesh.example", "--jwks-file", str(path), "--json")
    printed = json.loads(out)
    record = TrustedIssuer.objects.get()
    assert printed == shown(record)
    (registered,) = record.jwks["keys"]
    assert registered["kid"] == key.kid
    text, _ = addissuer("mesh2", "--issuer", "spiffe://mesh2.example", "--jwks-file", str(path))
    assert f"Keys: static: {key.kid} (EC P-256, thumbprint " in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issuer", "http://cluster.example.com"],
         "--issuer: The issuer must be https (plain http only for a loopback host)."),
        (["--issuer", "spiffe://mesh.example"],
         "--jwks-file: A SPIFFE trust domain has no discovery: give its bundle as jwks or jwks_uri."),
        (["--issuer", CLUSTER, "--max-lifetime", "forever"],
         "--max-lifetime: not a duration: 'forever' (use e.g. 300, 90s, 10m, 1h, 1d)"),
        (["--issuer", CLUSTER, "--max-lifetime", "0"], "--max-lifetime: a duration must be positive, not '0'"),
        (["--issuer", CLUSTER, "--jwks-uri", "http://keys.example/jwks"],
         "--jwks-uri: The URL must be https (plain http only for a loopback host)."),
        (["--issuer", CLUSTER, "--audience", "a\x01"],
         "--audience: Audiences are printable ASCII without spaces (e.g. https://api.example.com)."),
        (["--issuer", CLUSTER, "--jwks-file", "/nonexistent/keys.pem"],
         "--jwks-file: cannot read /nonexistent/keys.pem: No such file or directory"),
        (["--issuer", "https://taken.example.com"],
         "NAME: A trusted issuer named 'taken' already exists.; --issuer: The trusted issuer 'taken' already has "
         "this issuer."),
        (["--issuer", CLUSTER, "--name-typo"], None),
    ],
)
def test_addissuer_refuses_bad_input_and_registers_nothing(db, args, message):
    trusted_issuer_create(name="taken", issuer="https://taken.example.com")
    name = "taken" if "taken" in " ".join(args) else "prod"
    if message is None:
        with pytest.raises(CommandError, match="unrecognized arguments: --name-typo"):
            addissuer(name, *args)
    else:
        with pytest.raises(CommandError) as raised:
            addissuer(name, *args)
        assert str(raised.value) == message
    assert list(TrustedIssuer.objects.values_list("name", flat=True)) == ["taken"]


def test_addissuer_refuses_a_private_key_file_and_both_key_sources(db, tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(PRIVATE.private_pem())
    with pytest.raises(CommandError, match="^--jwks-file: That is a private key"):
        addissuer("prod", "--issuer", CLUSTER, "--jwks-file", str(path))
    path.write_text(json.dumps(jwk_set(PRIVATE)))
    with pytest.raises(CommandError) as raised:
        addissuer("prod", "--issuer", CLUSTER, "--jwks-file", str(path), "--jwks-uri", CLUSTER + "/keys")
    assert str(raised.value) == "--jwks-uri: Give jwks or jwks_uri, not both."
    assert not TrustedIssuer.objects.exists()
