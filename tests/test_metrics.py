"""``GET /metrics`` (tokens.metrics, tokens.endpoints.metrics): what is counted, which label
values exist, who may read them; and, on a real two-worker gunicorn, that a scrape sums every
worker's counts."""

from __future__ import annotations

import ast
import glob
import json
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import OperationalError
from django.test import Client as HttpClient
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from authserver.checks import check_configuration
from clients.models import Client, ClientSecret
from clients.services import secret_add
from tests.conftest import basic, post_token
from tests.live import LiveServer, call, manage, on_every_worker, run_gunicorn, server_env
from tokens import client_auth, metrics
from tokens.endpoints import token as token_endpoint

GRANT = {"grant_type": "client_credentials"}
WRONG = "ascs_" + "A" * 54  # well-formed shape, wrong checksum
REQUESTS = "authserver_token_requests_total"
DURATION_COUNT = "authserver_token_request_duration_seconds_count"
FAILURES = "authserver_client_authentication_failures_total"
DENIED = {
    "error": "access_denied",
    "error_description": "Metrics are served to the addresses in METRICS_ALLOWED_IPS "
    "and to bearer tokens with the scope metrics:read.",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(http: HttpClient, **extra: Any) -> Samples:
    response = http.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def changes(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every series that moved, with how much (histogram buckets and sums left out)."""
    moved = {}
    for key, now in after.items():
        if key[0].endswith(("_bucket", "_sum")):
            continue
        if now != before.get(key, 0.0):
            moved[key] = now - before.get(key, 0.0)
    return moved


def requests_moved(endpoint: str, result: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (REQUESTS, (("endpoint", endpoint), ("result", result))): 1.0,
        (DURATION_COUNT, (("endpoint", endpoint),)): 1.0,
    }


def failure_moved(reason: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(FAILURES, (("reason", reason),)): 1.0}


# --- what is counted ----------------------------------------------------------------------


def test_a_token_counts_once_as_success_and_is_timed(make_client, http):
    client, secret = make_client()
    before = scrape(http)
    assert post_token(http, GRANT, authorization=basic(client.client_id, secret)).status_code == 200
    after = scrape(http)
    assert changes(before, after) == requests_moved("token", "success")
    assert value(after, "authserver_token_request_duration_seconds_sum", endpoint="token") > value(
        before, "authserver_token_request_duration_seconds_sum", endpoint="token"
    )
    # Cumulative buckets: +Inf moved with the count.
    inf = ("authserver_token_request_duration_seconds_bucket", (("endpoint", "token"), ("le", "+Inf")))
    assert after[inf] - before.get(inf, 0.0) == 1.0


def _disabled(make_client):
    client, secret = make_client()
    Client.objects.filter(pk=client.pk).update(enabled=False)
    return {"authorization": basic(client.client_id, secret)}


def _revoked(make_client):
    client, secret = make_client()
    ClientSecret.objects.filter(prefix=secret[:12]).update(revoked=timezone.now())
    return {"authorization": basic(client.client_id, secret)}


def _expired(make_client):
    client, _ = make_client()
    expired = secret_add(client=client, expires=timezone.now() - timedelta(seconds=1))
    return {"authorization": basic(client.client_id, expired.secret)}


def _wrong_method(make_client):
    client, secret = make_client(token_endpoint_auth_method="client_secret_post")
    return {"authorization": basic(client.client_id, secret)}


def _wrong_address(make_client):
    client, secret = make_client(allowed_ips=["10.0.0.0/8"])
    return {"authorization": basic(client.client_id, secret), "REMOTE_ADDR": "192.0.2.77"}


def _wrong_secret(make_client):
    client, _ = make_client()
    _, other = make_client()
    return {"authorization": basic(client.client_id, other)}


def _unknown_client(make_client):
    _, secret = make_client()
    return {"authorization": basic("no-such-client", secret)}


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        (lambda make_client: {}, "no_credentials"),
        (lambda make_client: {"authorization": "Basic !!!"}, "malformed_credentials"),
        (lambda make_client: {"authorization": "Digest x"}, "malformed_credentials"),
        (lambda make_client: {"authorization": basic("svc", WRONG)}, "malformed_credentials"),
        (_unknown_client, "unknown_client"),
        (_wrong_secret, "wrong_secret"),
        (_disabled, "disabled_client"),
        (_revoked, "expired_or_revoked_secret"),
        (_expired, "expired_or_revoked_secret"),
        (_wrong_method, "method_not_allowed"),
        (_wrong_address, "address_not_allowed"),
    ],
)
def test_each_failed_authentication_counts_invalid_client_and_its_reason(make_client, http, credentials, reason):
    extra = credentials(make_client)
    before = scrape(http)
    assert post_token(http, GRANT, **extra).status_code == 401
    assert changes(before, scrape(http)) == {**requests_moved("token", "invalid_client"), **failure_moved(reason)}


@pytest.mark.parametrize(
    ("body", "extra", "error"),
    [
        ({"grant_type": "password"}, {}, "unsupported_grant_type"),
        ("grant_type=client_credentials&grant_type=client_credentials", {}, "invalid_request"),
        (GRANT, {"content_type": "application/json"}, "invalid_request"),
        ({**GRANT, "scope": "not-allowed"}, {}, "invalid_scope"),
    ],
)
def test_refused_requests_count_their_error(make_client, http, body, extra, error):
    client, secret = make_client()
    before = scrape(http)
    response = post_token(http, body, authorization=basic(client.client_id, secret), **extra)
    assert json.loads(response.content)["error"] == error
    assert changes(before, scrape(http)) == requests_moved("token", error)


def test_invalid_request_counts_once_and_no_failure_reason(make_client, http):
    client, secret = make_client()
    before = scrape(http)
    # Two client authentication methods at once (RFC 6749 §2.3).
    response = post_token(
        http, {**GRANT, "client_secret": secret}, authorization=basic(client.client_id, secret)
    )
    assert json.loads(response.content)["error"] == "invalid_request"
    assert changes(before, scrape(http)) == requests_moved("token", "invalid_request")


def test_a_get_counts_as_invalid_request(http, db):
    before = scrape(http)
    assert http.get("/oauth/token").status_code == 405
    assert changes(before, scrape(http)) == requests_moved("token", "invalid_request")


def test_a_lockout_counts_temporarily_unavailable_and_locked_out(make_client, http, settings):
    settings.FAILED_AUTH_RATE_PER_CLIENT = "2/m"
    client, secret = make_client()
    for _ in range(2):
        assert post_token(http, GRANT, authorization=basic(client.client_id, WRONG)).status_code == 401
    before = scrape(http)
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    assert response.status_code == 429
    assert changes(before, scrape(http)) == {
        **requests_moved("token", "temporarily_unavailable"), **failure_moved("locked_out")
    }


def test_an_outage_counts_temporarily_unavailable_without_a_failure(make_client, http, monkeypatch):
    client, secret = make_client()

    def database_down(form):
        raise OperationalError("connection refused")

    monkeypatch.setattr(token_endpoint, "issue", database_down)
    before = scrape(http)
    assert post_token(http, GRANT, authorization=basic(client.client_id, secret)).status_code == 503
    assert changes(before, scrape(http)) == requests_moved("token", "temporarily_unavailable")


def test_a_failure_of_ours_counts_server_error(make_client, monkeypatch, db):
    http = HttpClient(raise_request_exception=False)
    client, secret = make_client()

    def broken(form):
        raise RuntimeError("bug")

    monkeypatch.setattr(token_endpoint, "issue", broken)
    before = scrape(http)
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    assert response.status_code == 500
    assert json.loads(response.content)["error"] == "server_error"
    assert changes(before, scrape(http)) == requests_moved("token", "server_error")


def test_introspection_and_revocation_are_counted_under_their_own_names(make_client, http):
    client, secret = make_client()
    auth = basic(client.client_id, secret)
    token = json.loads(post_token(http, GRANT, authorization=auth).content)["access_token"]
    before = scrape(http)
    assert post_token(http, {"token": token}, path="/oauth/introspect", authorization=auth).status_code == 200
    assert post_token(http, {"token": token}, path="/oauth2/revoke/", authorization=auth).status_code == 200
    assert post_token(http, {"token": token}, path="/oauth/revoke", authorization=basic("x", WRONG)).status_code == 401
    assert changes(before, scrape(http)) == {
        **requests_moved("introspect", "success"),
        (REQUESTS, (("endpoint", "revoke"), ("result", "success"))): 1.0,
        (REQUESTS, (("endpoint", "revoke"), ("result", "invalid_client"))): 1.0,
        (DURATION_COUNT, (("endpoint", "revoke"),)): 2.0,
        **failure_moved("malformed_credentials"),
    }


# --- label values: fixed sets only --------------------------------------------------------


def test_every_reason_is_served_from_the_start_and_no_other(http, db):
    reasons = {dict(labels)["reason"] for name, labels in scrape(http) if name == FAILURES}
    assert reasons == {reason.value for reason in metrics.FailureReason}


def _reasons_raised_in_client_auth() -> set[str]:
    """Every reason text ``ClientAuthenticationFailed`` or ``fail`` is given in
    tokens/client_auth.py without naming its kind, either branch of a conditional, an
    f-string by its literal start (a failure that names its kind is counted as that kind)."""

    def texts(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.JoinedStr):
            first = node.values[0]
            assert isinstance(first, ast.Constant)
            return {first.value + "X"}
        if isinstance(node, ast.IfExp):
            return texts(node.body) | texts(node.orelse)
        if isinstance(node, ast.Name):
            return set()  # fail(reason) passing its own on
        raise AssertionError(f"a reason that is not literal text: {ast.unparse(node)}")

    tree = ast.parse(Path(client_auth.__file__).read_text())
    return {
        text
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("ClientAuthenticationFailed", "fail")
        and node.args and len(node.args) == 1 and not any(keyword.arg == "kind" for keyword in node.keywords)
        for text in texts(node.args[0])
    }


def test_every_real_reason_maps_to_a_named_failure_reason():
    reasons = _reasons_raised_in_client_auth()
    assert len(reasons) == 11
    assert [reason for reason in reasons if client_auth.metric_reason(reason) is metrics.FailureReason.OTHER] == []


def test_unknown_client_ids_create_no_series(make_client, http):
    _, secret = make_client()
    post_token(http, GRANT, authorization=basic("warm-up", secret))
    before = scrape(http)
    ids = [f"intruder-{secrets.token_hex(4)}" for _ in range(10)] + ["team:svc@prod", "a%2Fb", "ünïcode", "x" * 300]
    for client_id in ids:
        assert post_token(http, GRANT, authorization=basic(client_id, secret)).status_code == 401
        assert post_token(http, {**GRANT, "client_id": client_id, "client_secret": secret}).status_code == 401
    response = http.get("/metrics")
    after = parse(response.content.decode())
    assert set(after) == set(before)
    assert value(after, FAILURES, reason="unknown_client") - value(before, FAILURES, reason="unknown_client") == 28
    text = response.content.decode()
    assert not [client_id for client_id in ids if client_id in text]
    assert "intruder" not in text and "ascs_" not in text


def test_no_secret_token_or_client_id_in_the_output(make_client, http):
    client, secret = make_client(client_id="billing-backend", allowed_scopes=["invoices:read"])
    token = json.loads(post_token(http, GRANT, authorization=basic(client.client_id, secret)).content)["access_token"]
    text = http.get("/metrics").content.decode()
    for leak in (secret, secret[:12], token, token.split(".")[2], "billing-backend", "invoices:read"):
        assert leak not in text


def test_results_and_endpoints_outside_their_sets_are_other(db):
    before = parse(metrics.exposition().decode())
    metrics.record_request("somewhere", "a caller's words", 0.001)
    after = parse(metrics.exposition().decode())
    assert value(after, REQUESTS, endpoint="other", result="other") - value(
        before, REQUESTS, endpoint="other", result="other"
    ) == 1


# --- access control -----------------------------------------------------------------------


def assert_denied(response):
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content) == DENIED


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_served_by_default(http, db, address):
    scrape(http, REMOTE_ADDR=address)


@pytest.mark.parametrize("address", ["192.0.2.1", "10.0.0.1", "2001:db8::1", ""])
def test_other_addresses_are_denied(http, db, address):
    assert_denied(http.get("/metrics", REMOTE_ADDR=address))


def test_a_forged_forwarded_for_opens_nothing(http, db):
    assert_denied(http.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="127.0.0.1"))


def test_a_proxy_on_loopback_passes_on_the_callers_address(http, db, settings):
    """Behind a trusted local proxy the caller's address counts, not the proxy's."""
    import ipaddress

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.1/32"),)
    assert_denied(http.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5"))
    scrape(http, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")


def test_allowed_ips_are_configurable(http, db, settings):
    settings.METRICS_ALLOWED_IPS = ("10.0.0.0/8", "2001:db8::/32")
    scrape(http, REMOTE_ADDR="10.1.2.3")
    scrape(http, REMOTE_ADDR="2001:db8::5")
    assert_denied(http.get("/metrics", REMOTE_ADDR="127.0.0.1"))


def test_no_allowed_ips_admit_tokens_only(http, db, settings):
    settings.METRICS_ALLOWED_IPS = ()
    assert_denied(http.get("/metrics", REMOTE_ADDR="127.0.0.1"))


def _bearer(http, make_client, scopes):
    client, secret = make_client(allowed_scopes=scopes)
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    return client, "Bearer " + json.loads(response.content)["access_token"]


def test_a_token_with_metrics_read_is_served_from_anywhere(make_client, http):
    _, bearer = _bearer(http, make_client, ["metrics:read"])
    scrape(http, REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=bearer)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im1ldHJpY3M6cmVhZCJ9.",  # alg none, scope metrics:read
    ],
)
def test_anything_but_such_a_token_is_denied(http, db, authorization):
    assert_denied(http.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=authorization))


def test_a_token_without_the_scope_is_denied(make_client, http):
    _, bearer = _bearer(http, make_client, ["invoices:read"])
    assert_denied(http.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=bearer))


def test_a_token_of_a_disabled_client_is_denied(make_client, http):
    client, bearer = _bearer(http, make_client, ["metrics:read"])
    Client.objects.filter(pk=client.pk).update(enabled=False)
    assert_denied(http.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=bearer))


def test_only_get_and_head(http, db):
    response = http.post("/metrics")
    assert response.status_code == 405
    assert json.loads(response.content)["error"] == "invalid_request"
    assert http.head("/metrics").status_code == 200


def test_an_invalid_cidr_fails_the_system_check(settings):
    settings.METRICS_ALLOWED_IPS = ("10.0.0.0/8", "10.0.0.0/33", "localhost")
    (error,) = [m for m in check_configuration() if m.id == "authserver.E007"]
    assert "'10.0.0.0/33'" in error.msg and "'localhost'" in error.msg and "10.0.0.0/8'" not in error.msg


def test_the_default_passes_the_system_check():
    assert not [m for m in check_configuration() if m.id == "authserver.E007"]


# --- a real gunicorn: the counts of every worker, summed ----------------------------------


@pytest.mark.live
def test_a_scrape_sums_the_token_counts_of_every_worker(gunicorn_server: LiveServer):
    server = gunicorn_server
    auth = (server.client_id, server.client_secret)

    def good():
        return call(server, "/oauth/token", data=GRANT, auth=auth)

    def bad():
        # A client id of its own each, so no per-client limit locks these out (429).
        return call(server, "/oauth/token", data=GRANT, auth=(f"nobody-{secrets.token_hex(4)}", WRONG))

    # Until each worker has issued a token; then until each has refused one.
    issued = on_every_worker(server, good, until=lambda c: c.response.status_code == 200, what="issued a token")
    refused = on_every_worker(server, bad, until=lambda c: c.response.status_code == 401, what="refused one")
    assert {c.response.status_code for c in issued} == {200}
    assert {c.response.status_code for c in refused} == {401}

    # Every worker wrote counts of its own: files named by pid, in the master's directory.
    (directory,) = glob.glob(os.path.join(tempfile.gettempdir(), f"authserver-metrics-{server.process.pid}-*"))
    pids = {int(name.rsplit("_", 1)[1].removesuffix(".db")) for name in os.listdir(directory)}
    assert len(pids - {server.process.pid}) >= 2

    # Whichever worker answers the scrape, it shows the sum over both.
    scrapes = on_every_worker(server, lambda: call(server, "/metrics", method="GET"), what="answered a scrape")
    for scraped in scrapes:
        assert scraped.response.status_code == 200
        samples = parse(scraped.response.text)
        assert value(samples, REQUESTS, endpoint="token", result="success") == len(issued)
        assert value(samples, REQUESTS, endpoint="token", result="invalid_client") == len(refused)
        assert value(samples, DURATION_COUNT, endpoint="token") == len(issued) + len(refused)
        assert value(samples, FAILURES, reason="malformed_credentials") == len(refused)
        assert server.client_secret not in scraped.response.text


@pytest.mark.live
def test_each_server_start_gets_a_fresh_directory_removed_at_exit(tmp_path, gunicorn_database_url):
    """Two starts, two directories, none left behind; a directory named in the environment
    beforehand (say, another server's) is never used."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = server_env(
        database_url=gunicorn_database_url, issuer=f"http://127.0.0.1:{port}", BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    manage(env, "migrate", "--noinput")
    elsewhere = tmp_path / "another-servers"
    elsewhere.mkdir()
    seen = []
    for start in range(2):
        server_log, access_log = tmp_path / f"gunicorn-{start}.log", tmp_path / f"access-{start}.log"
        with run_gunicorn({**env, "PROMETHEUS_MULTIPROC_DIR": str(elsewhere)}, log=server_log,
                          access_log=access_log) as process:
            (directory,) = glob.glob(os.path.join(tempfile.gettempdir(), f"authserver-metrics-{process.pid}-*"))
            seen.append(directory)
            response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            assert response.status_code == 200
            assert value(parse(response.text), FAILURES, reason="wrong_secret") == 0
            assert os.listdir(directory)
        assert not os.path.exists(directory)
    assert seen[0] != seen[1]
    assert list(elsewhere.iterdir()) == []
