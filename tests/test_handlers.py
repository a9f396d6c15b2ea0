"""The WSGI application gunicorn serves: the OAuth endpoints run on a lean middleware
chain, everything else on the full one (authserver.handlers)."""

from __future__ import annotations

import gc
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request

from authserver.handlers import dispatching_application
from tests.conftest import TOKEN_PATHS, basic
from tokens.endpoints.base import OAuthEndpoint


@pytest.fixture(scope="module")
def application() -> Any:
    return dispatching_application(get_wsgi_application())


def call(
    application: Any, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "HTTP_HOST": headers.pop("host", "testserver"), "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    status: list[str] = []
    response_headers: list[tuple[str, str]] = []

    def start_response(line: str, pairs: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)
        response_headers.extend(pairs)

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(status[0].split()[0]), dict(response_headers), content


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_token_paths_take_the_lean_chain_and_keep_its_headers(application, make_client, path):
    client, secret = make_client(allowed_scopes=["read"])
    status, headers, content = call(
        application, "POST", path, b"grant_type=client_credentials", authorization=basic(client.client_id, secret)
    )
    assert status == 200, content
    assert json.loads(content)["token_type"] == "Bearer"
    assert headers["Content-Length"] == str(len(content))
    assert headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    assert headers["Cache-Control"] == "no-store"
    # Browser-only middleware did not: no session, CSRF or clickjacking machinery.
    assert "Set-Cookie" not in headers and "X-Frame-Options" not in headers and "Vary" not in headers


def test_lean_chain_still_checks_the_host(application, db):
    status, headers, content = call(application, "POST", "/oauth/token", b"grant_type=client_credentials",
                                    host="evil.example")
    assert status == 400
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_introspection_and_revocation_take_the_lean_chain(application, make_client, path):
    client, secret = make_client()
    authorization = basic(client.client_id, secret)
    status, headers, content = call(application, "POST", path, b"token=abc", authorization=authorization)
    assert status == 200, content
    assert "Set-Cookie" not in headers and "X-Frame-Options" not in headers


def test_other_paths_keep_the_full_chain(application, db):
    status, headers, _ = call(application, "GET", "/admin/login/")
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in headers.get("Set-Cookie", "")


@pytest.mark.parametrize("path", ["/oauth/tokens", "/oauth/token//", "/v1/oauth/token", "oauth/token", "/oauth/jwks"])
def test_near_misses_of_the_oauth_paths_keep_the_full_chain(application, db, path):
    status, headers, _ = call(application, "POST", path, b"grant_type=client_credentials")
    assert status == 404
    assert headers["X-Frame-Options"] == "DENY"


def test_the_lean_paths_are_the_urlconfs_oauth_routes():
    from authserver import urls
    from tokens import urls as oauth_urls

    assert urls.lean_urlpatterns == oauth_urls.urlpatterns
    assert {pattern.name for pattern in urls.lean_urlpatterns} == {"token", "introspect", "revoke"}


@pytest.fixture
def cyclic_garbage() -> Iterator[list[Any]]:
    """What the garbage collector finds unreachable, kept (``DEBUG_SAVEALL``), collected once
    when the test asks; collection is off meanwhile so that nothing is freed unseen."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[Any] = []
    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/oauth/token", b"grant_type=client_credentials", 200),
    ("/oauth/token", b"grant_type=password", 400),
    ("/oauth/introspect", b"token=abc", 200),
    ("/oauth/revoke", b"token=abc", 200),
])
def test_an_oauth_request_leaves_no_reference_cycle(
    application, make_client, cyclic_garbage, path, body, status
):
    # Reference counting frees each request's objects as it ends; none waits for the garbage
    # collector (DRF's Request keeps itself and the view in its parser_context until
    # OAuthEndpoint.forget_parser_context drops it).
    client, secret = make_client()
    call(application, "POST", path, body, authorization=basic(client.client_id, secret))  # warm: snapshots, keys
    gc.collect()
    gc.garbage.clear()

    for _ in range(5):
        answered, _, _ = call(application, "POST", path, body, authorization=basic(client.client_id, secret))
        assert answered == status
    gc.collect()

    # The test's own machinery (pytest, closures) may leave cycles of its own: look for the request's.
    per_request = (OAuthEndpoint, Request, HttpRequest, HttpResponseBase)
    assert [type(o).__qualname__ for o in gc.garbage if isinstance(o, per_request)] == []
