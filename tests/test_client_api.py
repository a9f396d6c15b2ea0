"""The client-management REST API: every route, its fields,
its callers (bearer scopes, staff session with CSRF) and secret rotation proven by
token requests."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import Client, ClientSecret, Role, Tenant
from tests.conftest import basic, post_token

GRANT = {"grant_type": "client_credentials"}
READ, WRITE = "clients:read", "clients:write"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
CHALLENGE = 'Bearer realm="authserver"'

# Every body this file receives, and every secret a fixture made (never to be shown).
_bodies: list[bytes] = []
_fixture_secrets: list[str] = []


def _json_values(value: Any) -> Iterator[tuple[str | None, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _json_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_values(item)


@pytest.fixture(autouse=True)
def _no_response_leaks_a_secret(db: None) -> Iterator[None]:
    """After each test: no body holds any stored hash or a hash field; each secret the API
    issued appears in exactly one body (the one that made it); fixture secrets in none."""
    _bodies.clear()
    _fixture_secrets.clear()
    yield
    texts = [body.decode("utf-8", "replace") for body in _bodies]
    for stored_hash, key_id in ClientSecret.objects.values_list("hash", "hash_key_id"):
        assert not [t for t in texts if stored_hash in t]
        assert not [t for t in texts if f'"{key_id}"' in t]
    issued = []
    for text in texts:
        try:
            document = json.loads(text)
        except ValueError:
            continue
        for key, value in _json_values(document):
            assert key not in {"hash", "hash_key_id"}
            if key == "client_secret" and isinstance(value, str):
                issued.append(value)
    for secret in issued:
        assert sum(secret in t for t in texts) == 1, "a secret was shown twice"
    for secret in _fixture_secrets:
        assert not [t for t in texts if secret in t]


@pytest.fixture
def make_client(make_client: Callable[..., tuple[Client, str]]) -> Callable[..., tuple[Client, str]]:
    def make(**kwargs: Any) -> tuple[Client, str]:
        client, secret = make_client(**kwargs)
        _fixture_secrets.append(secret)
        return client, secret

    return make


def call(
    http: HttpClient, method: str, path: str, body: Any = None, *, auth: str | None = None, raw: str | None = None,
    **extra: Any,
) -> Any:
    """One API request with a JSON body (``raw``: the body as is); the response is recorded."""
    data = raw if raw is not None else "" if body is None else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    extra.setdefault("content_type", "application/json")
    response = http.generic(method, path, data, **headers, **extra)
    _bodies.append(response.content)
    return response


def body(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def token_response(http: HttpClient, client_id: str, secret: str) -> Any:
    return post_token(http, GRANT, authorization=basic(client_id, secret))


def token_works(http: HttpClient, client_id: str, secret: str) -> bool:
    response = token_response(http, client_id, secret)
    assert response.status_code in (200, 401), response.content
    return response.status_code == 200  # type: ignore[no-any-return]


def bearer(http: HttpClient, make_client: Callable[..., tuple[Client, str]], *scopes: str, client_id: str) -> str:
    """A real access token from /oauth/token, as ``Authorization`` header value."""
    client, secret = make_client(client_id=client_id, allowed_scopes=list(scopes))
    response = token_response(http, client.client_id, secret)
    assert response.status_code == 200, response.content
    return "Bearer " + json.loads(response.content)["access_token"]


@pytest.fixture
def writer(http: HttpClient, make_client: Callable[..., tuple[Client, str]]) -> str:
    """A token with only clients:write: writes, and reads too."""
    return bearer(http, make_client, WRITE, client_id="api-writer")


@pytest.fixture
def reader(http: HttpClient, make_client: Callable[..., tuple[Client, str]]) -> str:
    return bearer(http, make_client, READ, client_id="api-reader")


@pytest.fixture
def target(make_client: Callable[..., tuple[Client, str]]) -> tuple[Client, str]:
    """The client the tests manage."""
    return make_client(client_id="billing", name="Billing", allowed_scopes=["invoices:read"])


def secret_summary(record: ClientSecret) -> dict[str, Any]:
    return {"prefix": record.prefix, "created": iso(record.created), "expires": iso(record.expires),
            "last_used": iso(record.last_used), "revoked": iso(record.revoked)}


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# --- routes: every one with and without a trailing slash, never a redirect ------------------

ROUTES = [
    ("GET", "/client"), ("POST", "/client"),
    ("GET", "/client/billing"), ("PUT", "/client/billing"), ("PATCH", "/client/billing"),
    ("DELETE", "/client/billing"),
    ("POST", "/client/billing/reset_secret"),
    ("GET", "/client/billing/secrets"), ("POST", "/client/billing/secrets"),
    ("DELETE", "/client/billing/secrets/{prefix}"),
    ("GET", "/tenant"), ("POST", "/tenant"),
    ("GET", "/tenant/acme"), ("PUT", "/tenant/acme"), ("PATCH", "/tenant/acme"), ("DELETE", "/tenant/acme"),
    ("GET", "/role"), ("POST", "/role"),
    ("GET", "/role/{role}"), ("PUT", "/role/{role}"), ("PATCH", "/role/{role}"), ("DELETE", "/role/{role}"),
]
GOOD_BODIES = {
    ("POST", "/client"): {"client_name": "new"},
    ("PUT", "/client/billing"): {"client_name": "renamed"},
    ("PATCH", "/client/billing"): {"client_name": "renamed"},
    ("POST", "/tenant"): {"slug": "globex"},
    ("PUT", "/tenant/acme"): {"name": "Acme"},
    ("PATCH", "/tenant/acme"): {"name": "Acme"},
    ("POST", "/role"): {"name": "viewer"},
    ("PUT", "/role/{role}"): {"name": "operator"},
    ("PATCH", "/role/{role}"): {"name": "operator"},
}
GOOD_STATUS = {"POST": 201, "DELETE": 204, "GET": 200, "PUT": 200, "PATCH": 200}


@pytest.fixture
def world(target: tuple[Client, str]) -> dict[str, str]:
    """A tenant ``acme``, a role in it, and ``billing``'s secret prefix."""
    client, _ = target
    tenant = Tenant.objects.create(slug="acme", name="ACME")
    role = Role.objects.create(name="admin", tenant=tenant)
    return {"prefix": client.secrets.get().prefix, "role": str(role.pk)}


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_every_route_answers_with_and_without_slash(http, writer, world, method, route, slash):
    path = route.format(**world) + slash
    response = call(http, method, path, GOOD_BODIES.get((method, route)), auth=writer)
    expected = 200 if route.endswith("reset_secret") else GOOD_STATUS[method]  # as in SeaCat Auth
    assert response.status_code == expected, response.content
    if response.status_code != 204:
        assert response["Content-Type"] == "application/json"


def test_posting_reset_secret_with_slash_is_not_redirected(http, writer, target):
    response = call(http, "POST", "/client/billing/reset_secret/", auth=writer)
    assert response.status_code == 200
    assert "Location" not in response


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/client", "GET, POST, HEAD, OPTIONS"),
        ("POST", "/client/billing", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"),
        ("GET", "/client/billing/reset_secret", "POST, OPTIONS"),
        ("GET", "/client/billing/secrets/abc", "DELETE, OPTIONS"),
    ],
)
def test_a_method_a_route_lacks_is_405_json(http, writer, target, method, path, allowed):
    data = body(call(http, method, path, auth=writer), 405)
    assert data == {"detail": f'Method "{method}" not allowed.'}


def test_unknown_path_is_404_json(http, writer):
    assert body(call(http, "GET", "/tenant/not a slug", auth=writer), 404)["error"] == "not_found"


# --- who may call ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_no_credentials_is_401_with_bearer_challenge(http, world, method, route):
    response = call(http, method, route.format(**world), GOOD_BODIES.get((method, route)))
    assert body(response, 401) == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
@pytest.mark.parametrize(("method", "path"), [("GET", "/client"), ("POST", "/client/billing/reset_secret")])
def test_a_bad_token_is_401_invalid_token(http, target, token, method, path):
    response = call(http, method, path, auth=f"Bearer {token}")
    assert body(response, 401) == {"detail": "The access token is invalid, expired or revoked."}
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="invalid_token"'


def test_a_token_of_a_disabled_client_stops_working(http, writer):
    Client.objects.filter(client_id="api-writer").update(enabled=False)
    response = call(http, "GET", "/client", auth=writer)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="invalid_token"'


@pytest.mark.parametrize(("method", "route"), [r for r in ROUTES if r[0] != "GET"])
def test_a_read_token_cannot_write(http, reader, world, method, route):
    response = call(http, method, route.format(**world), GOOD_BODIES.get((method, route)), auth=reader)
    assert body(response, 403) == {"detail": "The access token lacks the scope clients:write."}
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="insufficient_scope", scope="clients:write"'


@pytest.mark.parametrize(("method", "route"), [r for r in ROUTES if r[0] == "GET"])
def test_read_and_write_tokens_both_read(http, reader, writer, world, method, route):
    for auth in (reader, writer):
        assert call(http, method, route.format(**world), auth=auth).status_code == 200


def test_a_token_without_either_scope_is_403_naming_the_scope_needed(http, make_client, target):
    auth = bearer(http, make_client, "invoices:read", client_id="other")
    response = call(http, "GET", "/client", auth=auth)
    assert body(response, 403) == {"detail": "The access token lacks the scope clients:read."}
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="insufficient_scope", scope="clients:read"'
    response = call(http, "DELETE", "/client/billing", auth=auth)
    assert response["WWW-Authenticate"] == f'{CHALLENGE}, error="insufficient_scope", scope="clients:write"'


def test_a_token_for_another_audience_is_refused(http, make_client):
    client, secret = make_client(allowed_scopes=[WRITE], audiences=["https://elsewhere.example"])
    token = json.loads(token_response(http, client.client_id, secret).content)["access_token"]
    assert call(http, "GET", "/client", auth=f"Bearer {token}").status_code == 401


@pytest.fixture
def browser(db: None) -> HttpClient:
    """A browser session that enforces CSRF, holding a csrftoken cookie."""
    browser = HttpClient(enforce_csrf_checks=True)
    browser.get("/admin/login/")
    assert "csrftoken" in browser.cookies
    return browser


def test_staff_session_reads_and_writes_with_csrf(browser, django_user_model, target):
    staff = django_user_model.objects.create_user("operator", password="x" * 12, is_staff=True)
    browser.force_login(staff)
    csrf = browser.cookies["csrftoken"].value

    assert body(call(browser, "GET", "/client/billing"), 200)["client_id"] == "billing"

    refused = call(browser, "PUT", "/client/billing", {"enabled": False})
    assert body(refused, 403) == {"detail": "CSRF Failed: CSRF token missing."}
    assert Client.objects.get(client_id="billing").enabled

    updated = call(browser, "PUT", "/client/billing", {"enabled": False}, HTTP_X_CSRFTOKEN=csrf)
    assert body(updated, 200)["enabled"] is False
    created = call(browser, "POST", "/client", {"client_id": "by-session"}, HTTP_X_CSRFTOKEN=csrf)
    assert body(created, 201)["client_id"] == "by-session"


@pytest.mark.parametrize(("method", "path"), [("GET", "/client"), ("POST", "/client")])
def test_non_staff_session_is_403(browser, django_user_model, method, path):
    user = django_user_model.objects.create_user("someone", password="x" * 12)
    browser.force_login(user)
    csrf = browser.cookies["csrftoken"].value
    response = call(browser, method, path, {} if method == "POST" else None, HTTP_X_CSRFTOKEN=csrf)
    assert body(response, 403) == {"detail": "You do not have permission to perform this action."}


def test_session_cookie_does_not_open_the_api_to_a_token_without_scope(browser, django_user_model, http, make_client):
    """A bearer token is judged on its scopes even when a staff session rides along."""
    staff = django_user_model.objects.create_user("operator", password="x" * 12, is_staff=True)
    browser.force_login(staff)
    auth = bearer(http, make_client, "invoices:read", client_id="other")
    assert call(browser, "GET", "/client", auth=auth).status_code == 403


# --- create ---------------------------------------------------------------------------------


def test_create_returns_every_field_and_the_secret_once(http, writer):
    request = {
        "client_id": "team:svc@prod",
        "client_name": "Billing",
        "scope": "invoices:read invoices:write",
        "default_scope": "invoices:read",
        "token_endpoint_auth_method": "client_secret_basic",
        "access_token_ttl": "10m",
        "audiences": ["https://api.example.com"],
        "allowed_ips": ["127.0.0.0/8", "2001:db8::/32"],
        "tenants": ["acme"],
        "roles": ["auditor", "acme/admin"],
    }
    response = call(http, "POST", "/client", request, auth=writer)
    data = body(response, 201)
    client = Client.objects.get(client_id="team:svc@prod")
    record = client.secrets.get()
    assert data == {
        "client_id": "team:svc@prod",
        "client_name": "Billing",
        "enabled": True,
        "grant_types": ["client_credentials"],
        "scope": "invoices:read invoices:write",
        "default_scope": "invoices:read",
        "dpop_bound_access_tokens": False,
        "tls_client_certificate_bound_access_tokens": False,
        "token_endpoint_auth_method": "client_secret_basic",
        "jwks": None,
        "jwks_uri": "",
        "token_endpoint_auth_signing_alg": None,
        "tls_client_auth_subject_dn": "",
        "tls_client_auth_san_dns": "",
        "tls_client_auth_san_uri": "",
        "tls_client_auth_san_ip": "",
        "tls_client_auth_san_email": "",
        "federated_identities": [],
        "access_token_ttl": 600,
        "audiences": ["https://api.example.com"],
        "allowed_ips": ["127.0.0.0/8", "2001:db8::/32"],
        "seacatauth_credentials": True,
        "owner": None,
        "tenants": ["acme"],
        "roles": ["acme/admin", "auditor"],
        "created": iso(client.created),
        "updated": iso(client.updated),
        "secrets": [secret_summary(record)],
        "client_secret": data["client_secret"],
        "client_secret_expires_at": 0,
    }
    assert TIMESTAMP.fullmatch(data["created"])
    assert data["client_secret"].startswith(record.prefix)
    assert response["Location"] == "/client/team%3Asvc%40prod"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    token = json.loads(token_response(http, "team:svc@prod", data["client_secret"]).content)
    assert token["scope"] == "invoices:read"
    assert token["expires_in"] == 600


def test_create_with_an_empty_body_makes_a_default_client(http, writer):
    data = body(call(http, "POST", "/client", {}, auth=writer), 201)
    assert re.fullmatch(r"[a-z0-9]{24}", data["client_id"])
    assert {k: data[k] for k in ("client_name", "enabled", "grant_types", "scope", "default_scope",
                                 "token_endpoint_auth_method", "access_token_ttl", "audiences", "allowed_ips",
                                 "tenants", "roles")} == {
        "client_name": "", "enabled": True, "grant_types": ["client_credentials"], "scope": "",
        "default_scope": "", "token_endpoint_auth_method": None, "access_token_ttl": None, "audiences": [],
        "allowed_ips": [], "tenants": [], "roles": [],
    }
    assert token_works(http, data["client_id"], data["client_secret"])


def test_create_with_no_grant_type_makes_a_client_that_gets_no_token(http, writer):
    data = body(call(http, "POST", "/client", {"client_id": "parked", "grant_types": []}, auth=writer), 201)
    assert data["grant_types"] == []
    assert token_response(http, "parked", data["client_secret"]).status_code == 400


INVALID_CLIENT_FIELDS = [
    ({"allowed_ips": ["x"]}, {"allowed_ips": ["'x' is not an IP address or CIDR."]}),
    ({"allowed_ips": "10.0.0.0/8"}, {"allowed_ips": ['Expected a list of items but got type "str".']}),
    ({"scope": 'a"b'}, {"scope": ["'a\"b' is not a scope: printable ASCII without spaces, quotes or backslashes."]}),
    ({"scope": ["a", "b"]}, {"scope": ["Expected a string of space-delimited scopes."]}),
    ({"scope": "a", "default_scope": "b"},
     {"default_scope": ["Default scopes must be allowed scopes; not allowed: b."]}),
    ({"token_endpoint_auth_method": "none"}, {"token_endpoint_auth_method": ['"none" is not a valid choice.']}),
    ({"access_token_ttl": "soon"},
     {"access_token_ttl": ["Expected a positive number of seconds or a duration such as 90s, 10m, 1h, 1d."]}),
    ({"access_token_ttl": 0},
     {"access_token_ttl": ["Expected a positive number of seconds or a duration such as 90s, 10m, 1h, 1d."]}),
    ({"access_token_ttl": True},
     {"access_token_ttl": ["Expected a positive number of seconds or a duration such as 90s, 10m, 1h, 1d."]}),
    ({"access_token_ttl": "99999999d"}, {"access_token_ttl": ["At most 2147483647 seconds."]}),
    ({"audiences": ["has space"]}, {"audiences": ["Audiences are printable ASCII without spaces (e.g. https://api.example.com)."]}),
    ({"client_id": "has space"}, {"client_id": ["A client ID is 1 to 255 printable ASCII characters without spaces."]}),
    ({"client_id": "é"}, {"client_id": ["A client ID is 1 to 255 printable ASCII characters without spaces."]}),
    ({"client_name": "x" * 256}, {"client_name": ["Ensure this field has no more than 255 characters."]}),
    ({"enabled": "perhaps"}, {"enabled": ["Must be a valid boolean."]}),
    ({"grant_types": ["password"]}, {"grant_types": {"0": ['"password" is not a valid choice.']}}),
    ({"tenants": ["Not A Slug!"]},
     {"tenants": ["'Not A Slug!' is not a tenant slug: Enter a valid “slug” consisting of letters, numbers, "
                  "underscores or hyphens."]}),
    ({"roles": ["acme/a b"]},
     {"roles": ["'acme/a b' is not a role name: A role name has no spaces, slashes or control characters."]}),
    ({"scopes": "typo"}, {"scopes": ["Unknown field."]}),
    ({"created": "2020-01-01T00:00:00Z", "client_secret": "x"},
     {"client_secret": ["This field is read-only."], "created": ["This field is read-only."]}),
    ({"allowed_ips": ["x"], "colour": "red"},
     {"allowed_ips": ["'x' is not an IP address or CIDR."], "colour": ["Unknown field."]}),
]


@pytest.mark.parametrize(("request_body", "errors"), INVALID_CLIENT_FIELDS)
def test_create_with_an_invalid_field_is_400_naming_it(http, writer, request_body, errors):
    before = Client.objects.count(), Tenant.objects.count(), Role.objects.count()
    assert body(call(http, "POST", "/client", request_body, auth=writer), 400) == errors
    assert (Client.objects.count(), Tenant.objects.count(), Role.objects.count()) == before


def test_create_with_a_taken_client_id_is_409_and_changes_nothing(http, writer, target):
    """As in SeaCat Auth (DESIGN §9.6): an existing client_id is a conflict, not invalid input."""
    client, _ = target
    data = body(call(http, "POST", "/client", {"client_id": "billing", "scope": "other"}, auth=writer), 409)
    assert data == {"detail": "A client 'billing' already exists."}
    assert Client.objects.get(client_id="billing").allowed_scopes == client.allowed_scopes
    assert client.secrets.count() == 1


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "errors"),
    [
        ("{not json", "application/json", 400, {"detail": "JSON parse error - Expecting property name enclosed in "
                                                          "double quotes: line 1 column 2 (char 1)"}),
        ("[]", "application/json", 400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ('"text"', "application/json", 400,
         {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
        ("client_name=x", "application/x-www-form-urlencoded", 415,
         {"detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(http, writer, raw, content_type, status, errors):
    response = call(http, "POST", "/client", raw=raw, content_type=content_type, auth=writer)
    assert body(response, status) == errors


# --- read, list -----------------------------------------------------------------------------


def test_read_shows_the_client_with_its_secrets_summary(http, reader, target):
    client, secret = target
    assert token_works(http, "billing", secret)
    ClientSecret.objects.create(client=client, prefix="ascs_oldold0", hash="f" * 64, hash_key_id="0123456789abcdef",
                                revoked=timezone.now())
    client.refresh_from_db()
    data = body(call(http, "GET", "/client/billing", auth=reader), 200)
    records = list(client.secrets.order_by("-created"))
    assert records[1].last_used is not None
    assert data == {
        "client_id": "billing", "client_name": "Billing", "enabled": True, "grant_types": ["client_credentials"],
        "scope": "invoices:read", "default_scope": "", "token_endpoint_auth_method": None, "access_token_ttl": None,
        "dpop_bound_access_tokens": False, "jwks": None, "jwks_uri": "", "token_endpoint_auth_signing_alg": None,
        "tls_client_certificate_bound_access_tokens": False, "tls_client_auth_subject_dn": "",
        "tls_client_auth_san_dns": "", "tls_client_auth_san_uri": "", "tls_client_auth_san_ip": "",
        "tls_client_auth_san_email": "", "federated_identities": [],
        "audiences": [], "allowed_ips": [], "seacatauth_credentials": True, "owner": None, "tenants": [], "roles": [],
        "created": iso(client.created), "updated": iso(client.updated),
        "secrets": [secret_summary(r) for r in records],
    }


@pytest.mark.parametrize(
    "path", ["/client/nobody", "/client/nobody/", "/client/nobody/secrets", "/client/nobody/reset_secret"]
)
def test_unknown_client_is_404_json(http, writer, path):
    method = "POST" if path.endswith("reset_secret") else "GET"
    assert body(call(http, method, path, auth=writer), 404) == {"detail": "No client 'nobody'."}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_writing_an_unknown_client_is_404(http, writer, method):
    assert body(call(http, method, "/client/nobody", {"enabled": False}, auth=writer), 404) == {
        "detail": "No client 'nobody'."
    }


@pytest.mark.parametrize(
    "client_id", ["team:svc@prod", "we?ird#id%20x", "a/b", "trailing/", "x+y&z=1", "'quoted'", "~"]
)
def test_any_printable_client_id_is_addressable_percent_encoded(http, writer, make_client, client_id):
    make_client(client_id=client_id)
    base = "/client/" + quote(client_id, safe="")
    # %2F reaches the router as "/": an ID ending in "/" is addressed with one more.
    detail = base + "/" if client_id.endswith("/") else base
    assert body(call(http, "GET", detail, auth=writer), 200)["client_id"] == client_id
    assert body(call(http, "PUT", detail, {"client_name": "x"}, auth=writer), 200)["client_name"] == "x"
    assert len(body(call(http, "GET", base + "/secrets", auth=writer), 200)) == 1
    issued = body(call(http, "POST", base + "/reset_secret", auth=writer), 200)
    assert issued["client_id"] == client_id
    assert token_works(http, client_id, issued["client_secret"])
    assert call(http, "DELETE", detail, auth=writer).status_code == 204
    assert not Client.objects.filter(client_id=client_id).exists()


def test_a_slash_in_a_client_id_works_unencoded_too(http, writer, make_client):
    make_client(client_id="team/svc")
    assert body(call(http, "GET", "/client/team/svc", auth=writer), 200)["client_id"] == "team/svc"
    assert len(body(call(http, "GET", "/client/team/svc/secrets/", auth=writer), 200)) == 1


def all_ids() -> list[str]:
    return list(Client.objects.order_by("client_id").values_list("client_id", flat=True))


def test_list_pages_with_limit_and_offset(http, reader, make_client):
    for n in range(5):
        make_client(client_id=f"svc-{n}")
    ids = all_ids()
    first = body(call(http, "GET", "/client?limit=2", auth=reader), 200)
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == len(ids) == 6
    assert [c["client_id"] for c in first["results"]] == ids[:2]
    assert first["previous"] is None
    assert first["next"] == "http://testserver/client?limit=2&offset=2"
    last = body(call(http, "GET", "/client?limit=2&offset=4", auth=reader), 200)
    assert [c["client_id"] for c in last["results"]] == ids[4:]
    assert last["next"] is None
    assert "secrets" not in last["results"][0]
    default = body(call(http, "GET", "/client/", auth=reader), 200)
    assert [c["client_id"] for c in default["results"]] == ids


def test_list_filters_by_tenant_and_enabled(http, reader, make_client):
    make_client(client_id="a1", tenants=["acme"])
    make_client(client_id="a2", tenants=["acme", "globex"], enabled=False)
    make_client(client_id="g1", tenants=["globex"])

    def ids(query: str) -> list[str]:
        return [c["client_id"] for c in body(call(http, "GET", f"/client?{query}", auth=reader), 200)["results"]]

    assert ids("tenant=acme") == ["a1", "a2"]
    assert ids("tenant=acme&enabled=true") == ["a1"]
    assert ids("enabled=false") == ["a2"]
    assert ids("tenant=globex&enabled=false") == ["a2"]
    assert ids("tenant=nobody") == []
    assert body(call(http, "GET", "/client?enabled=perhaps", auth=reader), 400) == {
        "enabled": ["Must be a valid boolean."]
    }


def test_listing_costs_the_same_queries_for_3_and_30_clients(http, reader, make_client, django_assert_max_num_queries):
    def make(n: int) -> None:
        for i in range(n):
            make_client(client_id=f"svc-{i:03}-{n}", tenants=["acme", "globex"], roles=["auditor", "acme/admin"])

    make(3)
    call(http, "GET", "/client", auth=reader)  # warm the key cache
    with CaptureQueriesContext(connection) as three:
        assert body(call(http, "GET", "/client", auth=reader), 200)["count"] == 4
    queries_for_three = len(three)  # counted now: the next request clears Django's query log
    make(27)
    call(http, "GET", "/client", auth=reader)  # the registry changed: the bearer's client is loaded again
    with django_assert_max_num_queries(queries_for_three):
        data = body(call(http, "GET", "/client", auth=reader), 200)
    assert data["count"] == 31
    managed = [c for c in data["results"] if c["client_id"].startswith("svc-")]
    assert len(managed) == 30
    assert {(tuple(c["tenants"]), tuple(c["roles"])) for c in managed} == {
        (("acme", "globex"), ("acme/admin", "auditor"))
    }


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_changes_only_the_fields_sent(http, writer, make_client, method):
    make_client(client_id="billing", name="Billing", allowed_scopes=["a", "b"], default_scopes=["a"],
                tenants=["acme"], roles=["auditor"], allowed_ips=["10.0.0.0/8"], access_token_ttl=300)
    before = body(call(http, "GET", "/client/billing", auth=writer), 200)
    after = body(call(http, method, "/client/billing", {"client_name": "Invoices", "access_token_ttl": "1h"},
                      auth=writer), 200)
    assert after == {**before, "client_name": "Invoices", "access_token_ttl": 3600, "updated": after["updated"]}
    client = Client.objects.get(client_id="billing")
    assert (client.name, client.access_token_ttl, client.allowed_scopes) == ("Invoices", 3600, ["a", "b"])


def test_update_sets_every_writable_field(http, writer, target):
    request = {
        "client_id": "billing", "client_name": "B", "enabled": False, "grant_types": [],
        "scope": "x y", "default_scope": "y", "token_endpoint_auth_method": "client_secret_post",
        "access_token_ttl": 60, "audiences": ["urn:a", "urn:b"], "allowed_ips": ["192.0.2.0/24"],
        "tenants": ["t1"], "roles": ["t1/r", "g"],
    }
    data = body(call(http, "PUT", "/client/billing", request, auth=writer), 200)
    assert {k: data[k] for k in request} == {**request, "roles": ["g", "t1/r"]}


def test_update_with_null_resets_ttl_and_auth_method(http, writer, make_client):
    make_client(client_id="billing", access_token_ttl=60, token_endpoint_auth_method="client_secret_post")
    data = body(call(http, "PATCH", "/client/billing", {"access_token_ttl": None, "token_endpoint_auth_method": None},
                     auth=writer), 200)
    assert (data["access_token_ttl"], data["token_endpoint_auth_method"]) == (None, None)
    client = Client.objects.get(client_id="billing")
    assert (client.access_token_ttl, client.token_endpoint_auth_method) == (None, "")


def test_update_with_empty_lists_clears_tenants_and_roles(http, writer, make_client):
    make_client(client_id="billing", tenants=["acme"], roles=["acme/admin"])
    data = body(call(http, "PUT", "/client/billing", {"tenants": [], "roles": []}, auth=writer), 200)
    assert (data["tenants"], data["roles"]) == ([], [])


def test_update_with_a_different_client_id_is_400(http, writer, target):
    data = body(call(http, "PUT", "/client/billing", {"client_id": "other", "client_name": "x"}, auth=writer), 400)
    assert data == {"client_id": ["The client_id in the body must match the one in the path."]}
    assert Client.objects.get(client_id="billing").name == "Billing"


def test_the_document_read_can_be_sent_back_without_its_read_only_fields(http, writer, target):
    document = body(call(http, "GET", "/client/billing", auth=writer), 200)
    for read_only in ("created", "updated", "secrets"):
        del document[read_only]
    document["scope"] = "invoices:read invoices:write"
    assert body(call(http, "PUT", "/client/billing", document, auth=writer), 200)["scope"] == document["scope"]


@pytest.mark.parametrize(("request_body", "errors"), INVALID_CLIENT_FIELDS[:-4] + INVALID_CLIENT_FIELDS[-3:])
def test_update_with_an_invalid_field_is_400_and_changes_nothing(http, writer, target, request_body, errors):
    if "client_id" in request_body:
        errors = {"client_id": ["The client_id in the body must match the one in the path."]}
    before = body(call(http, "GET", "/client/billing", auth=writer), 200)
    assert body(call(http, "PATCH", "/client/billing", request_body, auth=writer), 400) == errors
    assert body(call(http, "GET", "/client/billing", auth=writer), 200) == before


def test_update_making_default_scope_unallowed_is_400_naming_default_scope(http, writer, make_client):
    make_client(client_id="billing", allowed_scopes=["a", "b"], default_scopes=["b"])
    data = body(call(http, "PUT", "/client/billing", {"scope": "a"}, auth=writer), 400)
    assert data == {"default_scope": ["Default scopes must be allowed scopes; not allowed: b."]}


def test_disabling_a_client_stops_its_tokens(http, writer, target):
    client, secret = target
    call(http, "PATCH", "/client/billing", {"enabled": False}, auth=writer)
    assert not token_works(http, "billing", secret)


def test_delete_removes_the_client_and_its_secrets(http, writer, target):
    client, secret = target
    assert call(http, "DELETE", "/client/billing", auth=writer).status_code == 204
    assert not Client.objects.filter(client_id="billing").exists()
    assert not ClientSecret.objects.filter(client_id=client.pk).exists()
    assert not token_works(http, "billing", secret)
    assert call(http, "DELETE", "/client/billing", auth=writer).status_code == 404


# --- secrets: rotation proven by token requests ----------------------------------------------


def test_reset_secret_leaves_only_the_newest_working(http, writer, target):
    client, original = target
    added = body(call(http, "POST", "/client/billing/secrets", {}, auth=writer), 201)["client_secret"]
    response = call(http, "POST", "/client/billing/reset_secret", auth=writer)
    data = body(response, 200)
    record = client.secrets.get(prefix=data["prefix"])
    assert data == {
        "client_id": "billing", "client_secret": data["client_secret"], "client_secret_expires_at": 0,
        "prefix": record.prefix, "created": iso(record.created), "expires": None,
    }
    assert data["client_secret"].startswith(data["prefix"])
    assert response["Cache-Control"] == "no-store"
    assert not token_works(http, "billing", original)
    assert not token_works(http, "billing", added)
    assert token_works(http, "billing", data["client_secret"])
    newest = body(call(http, "POST", "/client/billing/reset_secret/", {}, auth=writer), 200)["client_secret"]
    assert not token_works(http, "billing", data["client_secret"])
    assert token_works(http, "billing", newest)


def test_reset_secret_refuses_a_body_with_fields(http, writer, target):
    _, original = target
    data = body(call(http, "POST", "/client/billing/reset_secret", {"expires": None}, auth=writer), 400)
    assert data == {"expires": ["Unknown field."]}
    assert token_works(http, "billing", original)


def test_adding_a_secret_keeps_the_old_one_working(http, writer, target):
    client, original = target
    response = call(http, "POST", "/client/billing/secrets", auth=writer)
    data = body(response, 201)
    assert response["Cache-Control"] == "no-store"
    assert set(data) == {"client_id", "client_secret", "client_secret_expires_at", "prefix", "created", "expires"}
    assert token_works(http, "billing", original)
    assert token_works(http, "billing", data["client_secret"])


def test_adding_a_secret_with_expiries(http, writer, target, monkeypatch):
    client, original = target
    expires = (timezone.now() + timedelta(days=90)).replace(microsecond=0)
    others = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    request = {"expires": iso(expires), "others_expire": iso(others)}
    data = body(call(http, "POST", "/client/billing/secrets", request, auth=writer), 201)
    assert data["expires"] == iso(expires)
    assert data["client_secret_expires_at"] == int(expires.timestamp())
    listed = body(call(http, "GET", "/client/billing/secrets", auth=writer), 200)
    assert [(s["prefix"], s["expires"]) for s in listed] == [
        (data["prefix"], iso(expires)), (original[:12], iso(others))
    ]
    assert token_works(http, "billing", original)  # until ``others`` passes
    monkeypatch.setattr(timezone, "now", lambda: others + timedelta(seconds=1))
    assert not token_works(http, "billing", original)
    assert token_works(http, "billing", data["client_secret"])


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({"expires": "2001-01-01T00:00:00Z"}, {"expires": ["A new secret must expire in the future."]}),
        ({"expires": "tomorrow"}, {"expires": ["Datetime has wrong format. Use one of these formats instead: "
                                               "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
        ({"others_expire": 5}, {"others_expire": ["Datetime has wrong format. Use one of these formats instead: "
                                                  "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
        ({"expire": None}, {"expire": ["Unknown field."]}),
    ],
)
def test_adding_a_secret_with_invalid_fields_is_400(http, writer, target, request_body, errors):
    assert body(call(http, "POST", "/client/billing/secrets", request_body, auth=writer), 400) == errors
    assert ClientSecret.objects.count() == 2  # billing's and api-writer's


def test_secrets_list_by_prefix_with_created_expires_last_used_revoked(http, reader, writer, target):
    client, original = target
    assert token_works(http, "billing", original)
    added = body(call(http, "POST", "/client/billing/secrets", auth=writer), 201)
    call(http, "DELETE", f"/client/billing/secrets/{original[:12]}", auth=writer)
    listed = body(call(http, "GET", "/client/billing/secrets/", auth=reader), 200)
    records = list(client.secrets.order_by("-created"))
    assert listed == [secret_summary(r) for r in records]
    assert [s["prefix"] for s in listed] == [added["prefix"], original[:12]]
    assert listed[1]["last_used"] is not None
    assert listed[1]["revoked"] is not None
    assert listed[0]["revoked"] is None


def test_revoking_a_secret_stops_it_and_only_it(http, writer, target):
    _, original = target
    added = body(call(http, "POST", "/client/billing/secrets", auth=writer), 201)["client_secret"]
    assert call(http, "DELETE", f"/client/billing/secrets/{original[:12]}", auth=writer).status_code == 204
    assert not token_works(http, "billing", original)
    assert token_works(http, "billing", added)
    again = call(http, "DELETE", f"/client/billing/secrets/{original[:12]}/", auth=writer)
    assert body(again, 404) == {"detail": f"No live secret with prefix '{original[:12]}'."}


def test_revoking_an_unknown_prefix_is_404(http, writer, target):
    response = call(http, "DELETE", "/client/billing/secrets/ascs_nothere", auth=writer)
    assert body(response, 404) == {"detail": "No live secret with prefix 'ascs_nothere'."}
    other = call(http, "DELETE", "/client/nobody/secrets/ascs_nothere", auth=writer)
    assert body(other, 404) == {"detail": "No client 'nobody'."}


def test_a_client_cannot_revoke_another_clients_secret(http, writer, target, make_client):
    _, other_secret = make_client(client_id="other")
    response = call(http, "DELETE", f"/client/billing/secrets/{other_secret[:12]}", auth=writer)
    assert response.status_code == 404
    assert token_works(http, "other", other_secret)


def test_concurrent_resets_leave_exactly_one_working_secret(transactional_db, make_client):
    """8 parallel reset_secret calls (separate connections): the row lock serialises them."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises all writers, so it cannot show the row lock at work")
    http = HttpClient()
    client, original = make_client(client_id="billing")
    auth = bearer(http, make_client, WRITE, client_id="api-writer")
    barrier = threading.Barrier(8)
    responses: list[Any] = [None] * 8

    def reset(i: int) -> None:
        try:
            own = HttpClient()
            barrier.wait(timeout=10)
            responses[i] = call(own, "POST", "/client/billing/reset_secret", auth=auth)
        finally:
            connection.close()

    threads = [threading.Thread(target=reset, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    secrets = [body(r, 200)["client_secret"] for r in responses]
    assert len(set(secrets)) == 8
    working = [s for s in [original, *secrets] if token_works(http, "billing", s)]
    assert len(working) == 1
    assert ClientSecret.objects.filter(client=client).live(timezone.now()).count() == 1
    assert ClientSecret.objects.filter(client=client).count() == 9


# --- tenants and roles ----------------------------------------------------------------------


def test_tenant_lifecycle(http, writer, reader):
    created = body(call(http, "POST", "/tenant", {"slug": "acme", "name": "ACME"}, auth=writer), 201)
    tenant = Tenant.objects.get(slug="acme")
    assert created == {"slug": "acme", "name": "ACME", "created": iso(tenant.created)}
    assert body(call(http, "GET", "/tenant/acme", auth=reader), 200) == created
    listed = body(call(http, "GET", "/tenant", auth=reader), 200)
    assert listed == {"count": 1, "next": None, "previous": None, "results": [created]}
    renamed = body(call(http, "PATCH", "/tenant/acme", {"name": "Acme Inc."}, auth=writer), 200)
    assert renamed == {**created, "name": "Acme Inc."}
    moved = body(call(http, "PUT", "/tenant/acme", {"slug": "acme-inc"}, auth=writer), 200)
    assert moved["slug"] == "acme-inc"
    assert call(http, "GET", "/tenant/acme", auth=reader).status_code == 404
    assert call(http, "DELETE", "/tenant/acme-inc", auth=writer).status_code == 204
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({}, {"slug": ["This field is required."]}),
        ({"slug": "not a slug"},
         {"slug": ['Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.']}),
        ({"slug": "acme"}, {"slug": ["Tenant with this Slug already exists."]}),
        ({"slug": "new", "created": "x"}, {"created": ["This field is read-only."]}),
        ({"slug": "new", "title": "x"}, {"title": ["Unknown field."]}),
    ],
)
def test_tenant_create_invalid_is_400(http, writer, request_body, errors):
    Tenant.objects.create(slug="acme")
    assert body(call(http, "POST", "/tenant", request_body, auth=writer), 400) == errors


def test_tenant_rename_onto_a_taken_slug_is_400(http, writer):
    Tenant.objects.create(slug="acme")
    Tenant.objects.create(slug="globex")
    data = body(call(http, "PATCH", "/tenant/acme", {"slug": "globex"}, auth=writer), 400)
    assert data == {"slug": ["Tenant with this Slug already exists."]}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_tenant_is_404(http, writer, method):
    assert body(call(http, method, "/tenant/nobody", {"name": "x"}, auth=writer), 404) == {
        "detail": "No tenant 'nobody'."
    }


def test_deleting_a_tenant_removes_it_and_its_roles_from_clients(http, writer, make_client):
    make_client(client_id="billing", tenants=["acme"], roles=["acme/admin", "auditor"])
    call(http, "DELETE", "/tenant/acme", auth=writer)
    data = body(call(http, "GET", "/client/billing", auth=writer), 200)
    assert (data["tenants"], data["roles"]) == ([], ["auditor"])


def test_role_lifecycle(http, writer, reader):
    Tenant.objects.create(slug="acme")
    global_role = body(call(http, "POST", "/role", {"name": "auditor"}, auth=writer), 201)
    role = Role.objects.get(name="auditor")
    assert global_role == {"id": role.pk, "name": "auditor", "tenant": None, "role": "auditor",
                           "created": iso(role.created)}
    tenant_role = body(call(http, "POST", "/role", {"name": "admin", "tenant": "acme"}, auth=writer), 201)
    assert (tenant_role["tenant"], tenant_role["role"]) == ("acme", "acme/admin")
    assert body(call(http, "GET", f"/role/{role.pk}", auth=reader), 200) == global_role
    listed = body(call(http, "GET", "/role?tenant=acme", auth=reader), 200)
    assert [r["role"] for r in listed["results"]] == ["acme/admin"]
    assert body(call(http, "GET", "/role", auth=reader), 200)["count"] == 2
    moved = body(call(http, "PATCH", f"/role/{role.pk}", {"tenant": "acme"}, auth=writer), 200)
    assert moved == {**global_role, "tenant": "acme", "role": "acme/auditor"}
    back = body(call(http, "PUT", f"/role/{role.pk}/", {"tenant": None, "name": "reader"}, auth=writer), 200)
    assert back == {**global_role, "name": "reader", "role": "reader"}
    assert call(http, "DELETE", f"/role/{role.pk}", auth=writer).status_code == 204
    assert call(http, "GET", f"/role/{role.pk}", auth=reader).status_code == 404


@pytest.mark.parametrize(
    ("request_body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": "a b"}, {"name": ["A role name has no spaces, slashes or control characters."]}),
        ({"name": "a/b"}, {"name": ["A role name has no spaces, slashes or control characters."]}),
        ({"name": "x", "tenant": "nobody"}, {"tenant": ["No tenant 'nobody'."]}),
        ({"name": "auditor"}, {"name": ["A role 'auditor' already exists in the global roles."]}),
        ({"name": "admin", "tenant": "acme"}, {"name": ["A role 'admin' already exists in tenant 'acme'."]}),
        ({"name": "x", "role": "x"}, {"role": ["This field is read-only."]}),
        ({"name": "x", "tenant_slug": "acme"}, {"tenant_slug": ["Unknown field."]}),
    ],
)
def test_role_create_invalid_is_400(http, writer, request_body, errors):
    tenant = Tenant.objects.create(slug="acme")
    Role.objects.create(name="auditor")
    Role.objects.create(name="admin", tenant=tenant)
    assert body(call(http, "POST", "/role", request_body, auth=writer), 400) == errors


def test_same_role_name_may_exist_per_tenant_and_globally(http, writer):
    Tenant.objects.create(slug="acme")
    assert call(http, "POST", "/role", {"name": "admin"}, auth=writer).status_code == 201
    assert call(http, "POST", "/role", {"name": "admin", "tenant": "acme"}, auth=writer).status_code == 201


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_role_is_404(http, writer, method):
    assert body(call(http, method, "/role/999999", {"name": "x"}, auth=writer), 404) == {"detail": "No role 999999."}


# --- OpenAPI document and its page ----------------------------------------------------------

PATHS = {
    "/client": {"get", "post"},
    "/client/{client_id}": {"get", "put", "patch", "delete"},
    "/client/{client_id}/reset_secret": {"post"},
    "/client/{client_id}/secrets": {"get", "post"},
    "/client/{client_id}/secrets/{prefix}": {"delete"},
    "/client/{client_id}/api_keys": {"get", "post"},
    "/client/{client_id}/api_keys/{prefix}": {"get", "delete"},
    "/client/{client_id}/usage": {"get"},
    "/tenant": {"get", "post"},
    "/tenant/{slug}": {"get", "put", "patch", "delete"},
    "/role": {"get", "post"},
    "/role/{role_id}": {"get", "put", "patch", "delete"},
    "/trusted_issuer": {"get", "post"},
    "/trusted_issuer/{name}": {"get", "put", "patch", "delete"},
}


@pytest.mark.parametrize("path", ["/api/schema?format=json", "/api/schema/?format=json"])
def test_schema_is_openapi_3_listing_every_route(http, path):
    response = call(http, "GET", path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert {p: set(ops) for p, ops in document["paths"].items()} == PATHS
    operations = {(p, m): op for p, ops in document["paths"].items() for m, op in ops.items()}
    for (_, method), operation in operations.items():
        scope = READ if method == "get" else WRITE
        assert {"bearerAuth": [scope]} in operation["security"]
        assert {"401", "403"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["ClientInput"]["properties"]) == {
        "client_id", "client_name", "enabled", "grant_types", "scope", "default_scope",
        "dpop_bound_access_tokens", "token_endpoint_auth_method", "jwks", "jwks_uri",
        "token_endpoint_auth_signing_alg", "access_token_ttl", "tls_client_certificate_bound_access_tokens",
        "tls_client_auth_subject_dn", "tls_client_auth_san_dns", "tls_client_auth_san_uri", "tls_client_auth_san_ip",
        "tls_client_auth_san_email", "federated_identities", "audiences", "allowed_ips", "tenants", "roles",
        "seacatauth_credentials", "owner",
    }
    assert set(schemas["ClientDetail"]["properties"]) == set(schemas["ClientInput"]["properties"]) | {
        "created", "updated", "secrets"
    }
    assert set(schemas["Secret"]["properties"]) == {"prefix", "created", "expires", "last_used", "revoked"}
    assert set(schemas["TrustedIssuer"]["properties"]) == set(schemas["TrustedIssuerInput"]["properties"]) | {
        "created", "updated"
    }
    assert set(schemas["ApiKey"]["properties"]) == {
        "prefix", "name", "scope", "created", "expires", "last_used", "revoked"
    }
    assert set(schemas["ApiKeyCreated"]["properties"]) == {"api_key"} | set(schemas["ApiKey"]["properties"])
    assert set(schemas["ApiKeyCreate"]["properties"]) == {"name", "scope", "expires_in", "expires"}
    # SeaCat Auth's conflict and flag are documented (DESIGN §9.6).
    create = document["paths"]["/client"]["post"]
    assert "409" in create["responses"] and "SeaCat" in create["description"]
    assert "seacatauth_credentials" in document["paths"]["/client/{client_id}"]["put"]["description"]
    assert '"hash' not in response.content.decode()


def test_schema_defaults_to_yaml(http):
    response = call(http, "GET", "/api/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_docs_page_is_html_that_loads_nothing_from_elsewhere(http, path):
    response = http.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    for route, methods in PATHS.items():
        assert f"<code>{route}</code>" in html
        for method in methods:
            assert f'<span class="m {method.upper()}">{method.upper()}</span> <code>{route}</code>' in html
    assert "client_secret_expires_at" in html
