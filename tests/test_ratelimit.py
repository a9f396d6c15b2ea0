"""Brute-force limits on client authentication."""

from __future__ import annotations

import contextlib
import json
import logging
import time

import pytest
from django.core.cache import cache

from tests.conftest import assert_oauth_error, basic, post_token

GRANT = {"grant_type": "client_credentials"}
WRONG = "ascs_" + "A" * 54  # well-formed shape, wrong checksum: a cheap failure


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.FAILED_AUTH_RATE_PER_CLIENT = "3/m"
    settings.FAILED_AUTH_RATE_PER_IP = "8/m"
    cache.clear()
    yield
    with contextlib.suppress(Exception):  # the cache may be the unreachable one a test set
        cache.clear()


def token(http, client_id, secret, address="192.0.2.10"):
    return post_token(http, GRANT, authorization=basic(client_id, secret), REMOTE_ADDR=address)


def assert_locked_out(response):
    assert_oauth_error(response, 429, "temporarily_unavailable")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_client_locked_out_from_one_address_only(make_client, http, django_assert_num_queries):
    client, secret = make_client()
    for _ in range(3):
        assert token(http, client.client_id, WRONG).status_code == 401
    with django_assert_num_queries(0):
        assert_locked_out(token(http, client.client_id, secret))
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
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    caplog.set_level(logging.WARNING, logger="authserver")
    client, secret = make_client()
    for _ in range(5):
        assert token(http, client.client_id, WRONG).status_code == 401
    assert token(http, client.client_id, secret).status_code == 200
    assert "rate limiting skipped: cache unavailable" in caplog.text


def test_limits_are_shared_through_redis(make_client, http, settings):
    """Several processes share counters when the cache is Redis (the local service)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": f"t{time.time_ns()}",
        }
    }
    client, secret = make_client()
    for _ in range(3):
        token(http, client.client_id, WRONG)
    assert_locked_out(token(http, client.client_id, secret))
    assert json.loads(token(http, client.client_id, secret, address="198.51.100.7").content)["access_token"]
