"""Builders and fixtures shared by the suite."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import jwt
import pytest
from django.test import Client as HttpClient

from clients import registry, usage
from clients.models import Client
from clients.services import client_create
from tests.live import gunicorn_database_url, gunicorn_server  # noqa: F401  (fixtures)
from tokens import keys, remote_keys

pytest_plugins = ["tests.leakcheck"]

ISSUER = "http://testserver"
TOKEN_PATHS = [
    "/oauth/token",
    "/oauth/token/",
    "/oauth2/token",
    "/oauth2/token/",
    "/openidconnect/token",
    "/openidconnect/token/",
]


@pytest.fixture(autouse=True)
def _issuer(settings: Any) -> None:
    settings.ISSUER = ISSUER


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate-limit counters of one test never lock out the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_keyring() -> Iterator[None]:
    """Each test sees the database's keys and clients, not ones cached from an earlier
    test (whose database, and so whose registry version, is gone)."""
    keys._cache.__init__()  # type: ignore[misc]
    registry.reset()
    usage.reset()
    remote_keys.reset()
    yield
    keys._cache.__init__()  # type: ignore[misc]
    registry.reset()
    usage.reset()
    remote_keys.reset()


@pytest.fixture
def make_client(db: None) -> Callable[..., tuple[Client, Any]]:
    """``make_client(**client_create kwargs) -> (client, secret)``; the secret is ``None``
    for a key-only client (``token_endpoint_auth_method="private_key_jwt"``)."""

    def make(**kwargs: Any) -> tuple[Client, Any]:
        kwargs.setdefault("name", "test service")
        client, issued = client_create(**kwargs)
        return client, issued.secret if issued is not None else None

    return make


def outside_shared_state(captured: list[dict[str, Any]]) -> list[str]:
    """The statements run, less those of the shared security state's database store
    (``tokens.shared_state``: failure counters, lockouts), which every request pays alike."""
    return [query["sql"] for query in captured if "tokens_shared" not in query["sql"]]


def shared_state_statements(captured: list[dict[str, Any]]) -> list[str]:
    return [query["sql"] for query in captured if "tokens_shared" in query["sql"]]


def basic(client_id: str, secret: str, *, encode: bool = True) -> str:
    """An ``Authorization: Basic`` value, form-encoded inside as RFC 6749 §2.3.1 asks."""
    if encode:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


@pytest.fixture
def http() -> HttpClient:
    return HttpClient()


def post_token(
    http: HttpClient,
    data: dict[str, Any] | str | bytes,
    *,
    path: str = "/oauth/token",
    authorization: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    **extra: Any,
) -> Any:
    """POST a token request; ``data`` as a dict is form-encoded (lists repeat a parameter)."""
    if isinstance(data, dict):
        from urllib.parse import urlencode

        body: str | bytes = urlencode(data, doseq=True)
    else:
        body = data
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return http.post(path, body, content_type=content_type, **headers, **extra)


def jwks_verify(http: HttpClient, token: str, *, audience: str | list[str] | None = None) -> dict[str, Any]:
    """Verify ``token`` independently with PyJWT against the served JWKS; return its claims."""
    jwks = json.loads(http.get("/.well-known/jwks.json").content)
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(
        token,
        key=key,
        algorithms=["ES256", "RS256", "EdDSA"],
        issuer=ISSUER,
        audience=audience,
        options={"verify_aud": audience is not None, "require": ["exp", "iat", "iss", "sub", "jti"]},
    )


def assert_oauth_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """Assert an RFC 6749 §5.2 error response; return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = json.loads(response.content)
    assert body["error"] == error
    assert set(body) == {"error", "error_description"}
    assert body["error_description"]
    return body
