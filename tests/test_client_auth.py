"""Client authentication at the token endpoint (RFC 6749 §2.3, §5.2)."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import Client, ClientSecret
from clients.services import secret_add, secret_reset
from tests.conftest import assert_oauth_error, basic, outside_shared_state, post_token

GRANT = {"grant_type": "client_credentials"}
BASIC_CHALLENGE = 'Basic realm="authserver", charset="UTF-8"'


def ok(response) -> None:
    assert response.status_code == 200, response.content


def refused(response) -> None:
    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"] == BASIC_CHALLENGE
    assert response.json()["error_description"] == "Client authentication failed."


@pytest.mark.parametrize("client_id", ["my-backend-service", "team:svc@prod", "a+b%c", "x!#$&'()*,/;=?[]~"])
@pytest.mark.parametrize("encode", [True, False])
def test_basic_with_encoded_and_unencoded_credentials(make_client, http, client_id, encode):
    client, secret = make_client(client_id=client_id)
    ok(post_token(http, GRANT, authorization=basic(client_id, secret, encode=encode)))


def test_basic_resolves_ids_readable_two_ways(make_client, http):
    """Unencoded ``a%2Bb`` may mean client ``a%2Bb`` or (form-decoded) ``a+b``: the secret decides."""
    plus, plus_secret = make_client(client_id="a+b")
    encoded_literal, literal_secret = make_client(client_id="a%2Bb")
    ok(post_token(http, GRANT, authorization=basic("a%2Bb", plus_secret, encode=False)))
    ok(post_token(http, GRANT, authorization=basic("a%2Bb", literal_secret, encode=False)))


def test_body_credentials(make_client, http):
    client, secret = make_client()
    ok(post_token(http, {**GRANT, "client_id": client.client_id, "client_secret": secret}))


def test_basic_with_matching_client_id_in_body_is_accepted(make_client, http):
    client, secret = make_client()
    ok(post_token(http, {**GRANT, "client_id": client.client_id}, authorization=basic(client.client_id, secret)))


def test_basic_with_other_client_id_in_body_is_invalid_request(make_client, http):
    client, secret = make_client()
    response = post_token(http, {**GRANT, "client_id": "someone-else"}, authorization=basic(client.client_id, secret))
    assert_oauth_error(response, 400, "invalid_request")


def test_two_methods_at_once_is_invalid_request(make_client, http):
    client, secret = make_client()
    data = {**GRANT, "client_id": client.client_id, "client_secret": secret}
    body = assert_oauth_error(
        post_token(http, data, authorization=basic(client.client_id, secret)), 400, "invalid_request"
    )
    assert secret not in body["error_description"]


def test_no_credentials_is_invalid_client(http, db):
    refused(post_token(http, GRANT))


def test_client_id_without_secret_is_invalid_client(make_client, http):
    client, _ = make_client()
    refused(post_token(http, {**GRANT, "client_id": client.client_id}))


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":secret-without-id").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer abc.def.ghi",
        "Digest username=x",
    ],
)
def test_malformed_or_foreign_authorization_is_invalid_client(make_client, http, authorization):
    make_client()
    refused(post_token(http, GRANT, authorization=authorization))


def test_wrong_secret_unknown_client_and_mistyped_secret(make_client, http, caplog):
    client, secret = make_client()
    other, other_secret = make_client()
    mistyped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    caplog.set_level(logging.INFO, logger="authserver")
    refused(post_token(http, GRANT, authorization=basic(client.client_id, other_secret)))
    refused(post_token(http, GRANT, authorization=basic("no-such-client", secret)))
    refused(post_token(http, GRANT, authorization=basic(client.client_id, mistyped)))
    refused(post_token(http, GRANT, authorization=basic(client.client_id, "hunter2")))
    reasons = [r.reason for r in caplog.records if hasattr(r, "reason")]
    assert reasons == ["wrong secret", "unknown client", "malformed secret", "malformed secret"]
    logged = caplog.text
    for value in (secret, other_secret, mistyped):
        assert value not in logged


def test_mistyped_secret_is_refused_without_a_query(make_client, http):
    client, secret = make_client()
    mistyped = secret[:20] + ("x" if secret[20] != "x" else "y") + secret[21:]
    with CaptureQueriesContext(connection) as queries:
        refused(post_token(http, GRANT, authorization=basic(client.client_id, mistyped)))
    # No client lookup: the registry's version row (read for the lockout check, which it tells
    # whether any lockout may hold) and the failure's count are all.
    outside = outside_shared_state(queries.captured_queries)
    assert len(outside) <= 1 and all("registrystate" in sql and sql.startswith("SELECT") for sql in outside)


def test_unknown_client_costs_the_same_queries_as_wrong_secret(make_client, http):
    """Even with the client's real secret in this process's snapshot (it just got a
    token), a wrong secret misses the snapshot exactly as an unknown client does:
    registry version, lookup, and the existence check for the log's reason."""
    client, secret = make_client()
    _, other_secret = make_client()
    for _ in range(2):  # the first request also creates the signing key
        assert post_token(http, GRANT, authorization=basic(client.client_id, secret)).status_code == 200
    with CaptureQueriesContext(connection) as known:
        refused(post_token(http, GRANT, authorization=basic(client.client_id, other_secret)))
    with CaptureQueriesContext(connection) as unknown:
        refused(post_token(http, GRANT, authorization=basic("no-such-client", other_secret)))
    assert len(outside_shared_state(known.captured_queries)) == 3
    assert len(outside_shared_state(unknown.captured_queries)) == 3
    # Failures are counted alike (the store's occasional pruning of expired rows aside: it is random).
    def counting(captured: list[dict]) -> list[str]:
        return [q["sql"].split()[0] for q in captured if not q["sql"].startswith("DELETE")]

    assert counting(known.captured_queries) == counting(unknown.captured_queries)


def test_disabled_client_is_invalid_client_and_reason_is_logged(make_client, http, caplog):
    client, secret = make_client()
    Client.objects.filter(pk=client.pk).update(enabled=False)
    caplog.set_level(logging.INFO, logger="authserver")
    refused(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    assert any(getattr(r, "reason", None) == "client disabled" for r in caplog.records)


def test_revoked_and_expired_secrets_are_invalid_client(make_client, http, caplog):
    client, secret = make_client()
    expiring = secret_add(client=client, expires=timezone.now() - timedelta(seconds=1))
    ClientSecret.objects.filter(prefix=secret[:12]).update(revoked=timezone.now())
    caplog.set_level(logging.INFO, logger="authserver")
    refused(post_token(http, GRANT, authorization=basic(client.client_id, secret)))
    refused(post_token(http, GRANT, authorization=basic(client.client_id, expiring.secret)))
    reasons = [getattr(r, "reason", None) for r in caplog.records if hasattr(r, "reason")]
    assert reasons == ["secret revoked", "secret expired"]


def test_several_live_secrets_work_at_once_for_rotation(make_client, http):
    client, old = make_client()
    new = secret_add(client=client).secret
    ok(post_token(http, GRANT, authorization=basic(client.client_id, old)))
    ok(post_token(http, GRANT, authorization=basic(client.client_id, new)))


def test_reset_leaves_only_the_new_secret(make_client, http):
    client, old = make_client()
    extra = secret_add(client=client).secret
    new = secret_reset(client=client).secret
    refused(post_token(http, GRANT, authorization=basic(client.client_id, old)))
    refused(post_token(http, GRANT, authorization=basic(client.client_id, extra)))
    ok(post_token(http, GRANT, authorization=basic(client.client_id, new)))


def test_secret_of_another_client_does_not_work(make_client, http):
    client, _ = make_client()
    _, other_secret = make_client()
    refused(post_token(http, GRANT, authorization=basic(client.client_id, other_secret)))


@pytest.mark.parametrize(
    ("restricted_to", "used", "works"),
    [
        ("client_secret_basic", "basic", True),
        ("client_secret_basic", "post", False),
        ("client_secret_post", "post", True),
        ("client_secret_post", "basic", False),
        ("", "basic", True),
        ("", "post", True),
    ],
)
def test_auth_method_restriction(make_client, http, restricted_to, used, works):
    client, secret = make_client(token_endpoint_auth_method=restricted_to)
    if used == "basic":
        response = post_token(http, GRANT, authorization=basic(client.client_id, secret))
    else:
        response = post_token(http, {**GRANT, "client_id": client.client_id, "client_secret": secret})
    ok(response) if works else refused(response)


# --- IP allowlist and trusted proxies ---------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "remote", "works"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "192.168.1.1", False),
        (["192.168.1.7"], "192.168.1.7", True),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        ([], "203.0.113.9", True),
    ],
)
def test_ip_allowlist(make_client, http, allowed, remote, works):
    client, secret = make_client(allowed_ips=allowed)
    response = post_token(http, GRANT, authorization=basic(client.client_id, secret), REMOTE_ADDR=remote)
    ok(response) if works else refused(response)


def test_forwarded_for_is_ignored_without_trusted_proxies(make_client, http):
    client, secret = make_client(allowed_ips=["10.0.0.0/8"])
    response = post_token(
        http,
        GRANT,
        authorization=basic(client.client_id, secret),
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="10.0.0.1",
    )
    refused(response)


@pytest.mark.parametrize(
    ("forwarded_for", "works"),
    [
        ("10.0.0.1", True),  # the proxy saw 10.0.0.1
        ("203.0.113.66, 10.0.0.1", True),  # the caller's own header value is left of the real hop
        ("10.0.0.1, 203.0.113.66", False),  # forged: the last untrusted hop is 203.0.113.66
        ("10.0.0.1, 172.16.0.2", True),  # second hop is another trusted proxy
        ("garbage", False),  # unparsable: the proxy's own address counts
        ("", False),
    ],
)
def test_forwarded_for_from_trusted_proxy(make_client, http, settings, forwarded_for, works):
    import ipaddress

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("172.16.0.0/12"),)
    client, secret = make_client(allowed_ips=["10.0.0.0/8"])
    response = post_token(
        http,
        GRANT,
        authorization=basic(client.client_id, secret),
        REMOTE_ADDR="172.16.0.1",
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )
    ok(response) if works else refused(response)


@pytest.mark.parametrize("client_id", ["\x00", "svc\x00", "svc\n", "x" * 300, "ä"])
@pytest.mark.parametrize("method", ["basic", "post"])
def test_impossible_client_ids_are_unknown_clients_not_errors(make_client, http, client_id, method, caplog):
    """No database is asked about an id no client can have (PostgreSQL refuses NUL outright)."""
    _, secret = make_client()
    caplog.set_level(logging.INFO, logger="authserver")
    if method == "basic":
        response = post_token(http, GRANT, authorization=basic(client_id, secret))
    else:
        response = post_token(http, {**GRANT, "client_id": client_id, "client_secret": secret})
    refused(response)
    assert [getattr(r, "reason", None) for r in caplog.records if hasattr(r, "reason")] == ["unknown client"]


@pytest.mark.parametrize("template", ["{secret}", "svc:{secret}", " {secret}", "x{secret}y"])
def test_a_secret_pasted_into_client_id_is_not_logged(make_client, http, caplog, template):
    client, secret = make_client()
    caplog.set_level(logging.INFO, logger="authserver")
    data = {**GRANT, "client_id": template.format(secret=secret), "client_secret": secret}
    refused(post_token(http, data))
    assert secret not in caplog.text
    assert secret[:12] in caplog.text
