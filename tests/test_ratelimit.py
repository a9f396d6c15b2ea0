"""Brute-force limits on client authentication, on both shared stores: the database (no
``REDIS_URL``, the embedded default) and Redis."""

from __future__ import annotations

import ipaddress
import json
import logging
import time

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import assert_oauth_error, basic, outside_shared_state, post_token, shared_state_statements

GRANT = {"grant_type": "client_credentials"}
WRONG = "ascs_" + "A" * 54  # well-formed shape, wrong checksum: a cheap failure


TEST_REDIS = "redis://127.0.0.1:6379/15"


def _local_redis() -> redis.Redis:
    client = redis.Redis.from_url(TEST_REDIS, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    return client


@pytest.fixture(params=["database", "redis"], autouse=True)
def store(request, settings) -> str:
    """Each test on each store; Redis starts empty, as the test database does."""
    settings.FAILED_AUTH_RATE_PER_CLIENT = "3/m"
    settings.FAILED_AUTH_RATE_PER_IP = "8/m"
    if request.param == "redis":
        _local_redis().flushdb()
        settings.REDIS_URL = TEST_REDIS
    else:
        settings.REDIS_URL = ""
    return request.param


def token(http, client_id, secret, address="192.0.2.10"):
    return post_token(http, GRANT, authorization=basic(client_id, secret), REMOTE_ADDR=address)


def assert_locked_out(response):
    assert_oauth_error(response, 429, "temporarily_unavailable")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_client_locked_out_from_one_address_only(make_client, http, store):
    client, secret = make_client()
    for _ in range(3):
        assert token(http, client.client_id, WRONG).status_code == 401
    with CaptureQueriesContext(connection) as queries:
        assert_locked_out(token(http, client.client_id, secret))
    # Refused before any secret is checked: in the database, the registry's version row (which
    # says a lockout may hold) and the lockout markers; in Redis, one MGET and no query.
    outside = outside_shared_state(queries.captured_queries)
    assert all("registrystate" in sql for sql in outside) and len(outside) == (1 if store == "database" else 0)
    assert len(shared_state_statements(queries.captured_queries)) == (1 if store == "database" else 0)
    assert token(http, client.client_id, secret, address="198.51.100.7").status_code == 200


def test_address_locked_out_for_every_client(make_client, http):
    client, secret = make_client()
    for number in range(8):
        assert token(http, f"guess-{number}", WRONG).status_code == 401
    assert_locked_out(token(http, client.client_id, secret))
    assert_locked_out(post_token(http, GRANT, REMOTE_ADDR="192.0.2.10"))  # even without credentials
    assert token(http, client.client_id, secret, address="198.51.100.7").status_code == 200


def test_unknown_and_known_clients_count_alike(make_client, http):
    client, _ = make_client()
    for _ in range(3):
        token(http, client.client_id, WRONG)
        token(http, "no-such-client", WRONG)
    assert token(http, client.client_id, WRONG).status_code == 429
    assert token(http, "no-such-client", WRONG).status_code == 429


def test_lockout_ends_with_the_window(make_client, http, monkeypatch):
    client, secret = make_client()
    for _ in range(3):
        token(http, client.client_id, WRONG)
    response = token(http, client.client_id, secret)
    assert_locked_out(response)
    later = time.time() + int(response["Retry-After"]) + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert token(http, client.client_id, secret).status_code == 200


def test_off_disables_the_limits(make_client, http, settings):
    settings.FAILED_AUTH_RATE_PER_CLIENT = "off"
    settings.FAILED_AUTH_RATE_PER_IP = "off"
    client, secret = make_client()
    for _ in range(20):
        assert token(http, client.client_id, WRONG).status_code == 401
    assert token(http, client.client_id, secret).status_code == 200


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_introspection_and_revocation_are_limited_too(make_client, http, path):
    client, secret = make_client()
    for _ in range(3):
        post_token(
            http, {"token": "x"}, path=path, authorization=basic(client.client_id, WRONG), REMOTE_ADDR="192.0.2.10"
        )
    response = post_token(
        http, {"token": "x"}, path=path, authorization=basic(client.client_id, secret), REMOTE_ADDR="192.0.2.10"
    )
    assert_locked_out(response)


def test_cache_down_keeps_issuing_tokens(make_client, http, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    caplog.set_level(logging.WARNING, logger="authserver")
    client, secret = make_client()
    for _ in range(5):
        assert token(http, client.client_id, WRONG).status_code == 401
    assert token(http, client.client_id, secret).status_code == 200
    assert "rate limiting skipped: cache unavailable" in caplog.text


def test_limits_are_shared_through_redis(make_client, http, settings):
    """Several processes share counters through Redis: counts made by another process (here:
    written straight into Redis as that process would) lock this one out."""
    _local_redis().flushdb()
    settings.REDIS_URL = TEST_REDIS
    client, secret = make_client()
    for _ in range(2):
        token(http, client.client_id, WRONG)
    from tokens import ratelimit
    from tokens.shared_state import RedisState

    (_, key, (limit, window)), = [
        limit for limit in ratelimit._limits(client.client_id, ipaddress.ip_address("192.0.2.10"))
        if limit[0] == ratelimit._CLIENT_GROUP
    ]
    other_process = RedisState(TEST_REDIS)
    count, window_end = other_process.hit(key, window=window, now=time.time())
    assert count == 3 == limit
    other_process.mark(ratelimit._lock_key(key), until=window_end)
    assert_locked_out(token(http, client.client_id, secret))
    assert json.loads(token(http, client.client_id, secret, address="198.51.100.7").content)["access_token"]


def test_the_markers_are_read_only_while_a_lockout_may_hold(make_client, http, monkeypatch, store):
    """The embedded default's hot path: the registry's version row says until when a lockout may
    hold (``RegistryState.lockouts_until``), so the markers cost no query before the first lockout
    or after the last one has ended, and the lockout itself is refused as ever."""
    from clients.models import RegistryState

    if store == "redis":
        pytest.skip("Redis: the markers are one MGET whatever holds, outside the database")
    client, secret = make_client()

    def marker_reads() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert token(http, client.client_id, secret, address="198.51.100.7").status_code == 200
        return len(shared_state_statements(queries.captured_queries))

    assert marker_reads() == 0  # nothing has ever been locked out
    for _ in range(3):
        assert token(http, client.client_id, WRONG).status_code == 401
    until = RegistryState.objects.get(pk=1).lockouts_until
    assert until > time.time()  # raised with the lockout, to the end of its window
    assert_locked_out(token(http, client.client_id, secret))
    assert marker_reads() == 1  # from another address: its markers are read, and none holds
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + (until - real_time()) + 1)  # the window is over
    assert marker_reads() == 0
