"""The OAuth endpoints as lean DRF views: no authentication, permission or throttle
classes, one renderer, secrets kept out of error reports, no CSRF from a session."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import resolve
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from tests.conftest import TOKEN_PATHS, basic, post_token
from tokens.endpoints.introspection import IntrospectionView
from tokens.endpoints.revocation import RevocationView
from tokens.endpoints.token import TokenView

OAUTH_ROUTES = [(path, TokenView) for path in TOKEN_PATHS] + [
    (f"/{prefix}/{name}{slash}", view)
    for prefix in ("oauth", "oauth2")
    for name, view in (("introspect", IntrospectionView), ("revoke", RevocationView))
    for slash in ("", "/")
]
STARS = SafeExceptionReporterFilter.cleansed_substitute


@pytest.mark.parametrize(("path", "view"), OAUTH_ROUTES)
def test_each_oauth_path_routes_to_a_lean_api_view(path, view):
    callback = resolve(path).func
    assert callback.cls is view  # type: ignore[attr-defined]
    assert issubclass(view, APIView)
    assert view.authentication_classes == ()
    assert view.permission_classes == ()
    assert view.throttle_classes == ()
    assert view.parser_classes == ()
    assert list(view.renderer_classes) == [JSONRenderer]
    assert view.versioning_class is None
    assert callback.csrf_exempt  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "body", "hidden"),
    [
        ("/oauth/token", {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s3cr3t",
                          "client_assertion": "eyJ.a.b"}, {"client_secret", "client_assertion"}),
        ("/oauth/introspect", {"token": "eyJ.t.k", "client_id": "c", "client_secret": "s3cr3t"},
         {"client_secret", "token"}),
        ("/oauth/revoke", {"token": "eyJ.t.k", "client_id": "c", "client_secret": "s3cr3t"},
         {"client_secret", "token"}),
    ],
)
def test_secret_parameters_are_starred_in_error_reports(db, http, path, body, hidden):
    response = post_token(http, body, path=path)
    # No such client (or, with an assertion beside the secret, two methods): the request
    # still went through the view.
    assert response.status_code == (400 if "client_assertion" in body else 401)
    shown = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert {name for name, value in shown.items() if value == STARS} == hidden
    assert shown["client_id"] == "c"


def test_a_failure_report_does_not_show_the_client_secret(make_client, http, monkeypatch, caplog):
    from tokens import grant

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    client, secret = make_client()
    monkeypatch.setattr(grant, "issue_access_token", explode)
    http.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = post_token(
            http, {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}
        )
    assert response.status_code == 500
    assert json.loads(response.content)["error"] == "server_error"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    # What Django's AdminEmailHandler would send.
    assert record.exc_info is not None
    report = ExceptionReporter(record.request, *record.exc_info).get_traceback_text()  # type: ignore[attr-defined]
    assert "RuntimeError" in report and client.client_id in report
    assert secret not in report


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_a_staff_session_without_a_csrf_token_changes_nothing(make_client, path):
    client, secret = make_client()
    staff = get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True)
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(staff)
    body = urlencode({"grant_type": "client_credentials"} if path == "/oauth/token" else {"token": "x"})
    response = browser.post(path, body, content_type="application/x-www-form-urlencoded",
                            HTTP_AUTHORIZATION=basic(client.client_id, secret))
    assert response.status_code == 200, response.content
    # The session authenticates nothing: without client credentials the answer is invalid_client.
    response = browser.post(path, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "invalid_client"
