"""Security state shared by every worker (``tokens.shared_state``): on the embedded default
(SQLite, two gunicorn workers, no Redis) limits hold across workers exactly as in one process,
and records made to be used once are used once, whichever store holds them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.db import connection

from tests.live import Call, by_worker, call, live_nodes, on_every_worker
from tokens.shared_state import DatabaseState, RedisState, SharedState, hashed

LIMIT = 20
WRONG = "ascs_" + "A" * 54  # well-formed, wrong checksum: the cheapest failure


@pytest.mark.live
def test_an_address_is_locked_out_after_exactly_its_limit_spread_over_both_workers(tmp_path, gunicorn_database_url):
    with live_nodes(
        tmp_path, database_url=gunicorn_database_url, count=1, ISSUER="http://127.0.0.1",
        FAILED_AUTH_RATE_PER_IP=f"{LIMIT}/h", FAILED_AUTH_RATE_PER_CLIENT="100000/h", TRUSTED_PROXIES="127.0.0.1/32",
    ) as (server,):
        good = (server.client_id, server.client_secret)

        def attempt(address: str, secret: str) -> Call:
            return call(server, "/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(server.client_id, secret), headers={"X-Forwarded-For": address})

        # Failures two at a time, so that both workers take some; a run that one worker
        # happened to serve alone proves nothing, and is tried again from another address.
        for last in range(1, 6):
            address = f"203.0.113.{last}"
            failures: list[Call] = []
            with ThreadPoolExecutor(max_workers=2) as pool:
                while len(failures) < LIMIT:
                    size = min(2, LIMIT - len(failures))
                    failures += pool.map(lambda _, a=address: attempt(a, WRONG), range(size))
            assert [c.response.status_code for c in failures] == [401] * LIMIT
            served = by_worker(server, failures)
            if len(served) == 2:
                break
        else:
            pytest.fail("five runs of failures were each served by one worker alone")
        assert all(0 < len(calls) < LIMIT for calls in served.values())
        # The limit is used up: every worker now refuses the address, even with the right secret...
        refused = on_every_worker(
            server, lambda: attempt(address, good[1]), until=lambda c: c.response.status_code == 429,
            what="refused the locked-out address",
        )
        for c in refused:
            assert c.response.status_code == 429
            assert c.response.json()["error"] == "temporarily_unavailable"
            assert 1 <= int(c.response.headers["Retry-After"]) <= 3600
        # ... while another address is served.
        assert attempt("203.0.113.200", good[1]).response.status_code == 200


def _stores() -> list[object]:
    return [pytest.param("database", marks=pytest.mark.django_db(transaction=True)), "redis"]


@pytest.fixture
def state(request, settings) -> SharedState:
    if request.param == "database":
        return DatabaseState()
    client = redis.Redis.from_url("redis://127.0.0.1:6379/13", socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    return RedisState("redis://127.0.0.1:6379/13")


@pytest.mark.parametrize("state", _stores(), indirect=True)
def test_counts_add_up_within_a_window_and_start_again_in_the_next(state: SharedState, monkeypatch) -> None:
    # Real time: Redis expires keys by its own clock.  Windows are aligned to the epoch.
    # The database store prunes at random (1 write in 100); a hit made at the next window's
    # start may rightly delete the window before it, so the housekeeping waits here (it has
    # its own test below).
    monkeypatch.setattr("tokens.shared_state._PRUNE_CHANCE", 0.0)
    key, window = hashed("test", f"counter-{time.time_ns()}"), 3600
    if window - time.time() % window < 5:  # Redis would expire the first window mid-test
        time.sleep(6)
    now = time.time()
    end = (now // window + 1) * window
    assert [state.hit(key, window=window, now=now) for _ in range(3)] == [(1, end), (2, end), (3, end)]
    assert state.hit(key, window=window, now=end) == (1, end + window)
    assert state.hit(key, window=window, now=now) == (4, end)


@pytest.mark.django_db(transaction=True)
def test_the_database_store_prunes_ended_windows_and_markers_and_keeps_the_rest(monkeypatch) -> None:
    monkeypatch.setattr("tokens.shared_state._PRUNE_CHANCE", 0.0)
    state, window, now = DatabaseState(), 60, time.time()
    end = (now // window + 1) * window
    for _ in range(2):
        state.hit("ended", window=window, now=now - window)
        state.hit("live", window=window, now=now)
    state.mark("ended", until=now - 1)
    state.mark("live", until=now + 30)
    assert state.add_once("once-ended", until=now - 1, now=now - 2)
    assert state.add_once("once-live", until=now + 30, now=now)

    state.prune(now=now)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {state.key} FROM {state.counters} ORDER BY 1")  # noqa: S608
        assert [row[0] for row in cursor.fetchall()] == [f"live:{int(now // window)}"]
        cursor.execute(f"SELECT {state.key} FROM {state.markers} ORDER BY 1")  # noqa: S608
        assert [row[0] for row in cursor.fetchall()] == ["live", "once-live"]
    # What was kept counts on, and what was pruned starts again.
    assert state.hit("live", window=window, now=now) == (3, end)
    assert state.hit("ended", window=window, now=now - window) == (1, end - window)
    assert state.marked(["ended", "live"], now=now) == {"live": pytest.approx(now + 30)}
    assert not state.add_once("once-live", until=now + 30, now=now)


@pytest.mark.parametrize("state", _stores(), indirect=True)
def test_markers_hold_until_their_end(state: SharedState) -> None:
    now = time.time()
    state.mark("a", until=now + 30)
    state.mark("b", until=now + 60)
    assert state.marked(["a", "b", "c"], now=now) == {"a": pytest.approx(now + 30), "b": pytest.approx(now + 60)}
    assert state.marked(["a", "b"], now=now + 45) == {"b": pytest.approx(now + 60)}


@pytest.mark.parametrize("state", _stores(), indirect=True)
def test_of_many_concurrent_callers_exactly_one_adds_a_record(state: SharedState) -> None:
    now = time.time()
    key = hashed("test", f"jti-{time.time_ns()}")
    # SQLite runs one writer at a time anyway, and its shared-cache in-memory test database
    # answers concurrent threads "table is locked" instead of waiting: there, one after another.
    threads = 1 if isinstance(state, DatabaseState) and connection.vendor == "sqlite" else 8
    with ThreadPoolExecutor(max_workers=threads) as pool:
        won = list(pool.map(lambda _: state.add_once(key, until=now + 60, now=now), range(16)))
    assert won.count(True) == 1
    assert state.add_once(key, until=now + 60, now=now) is False
    brief = hashed("test", f"brief-{time.time_ns()}")
    assert state.add_once(brief, until=time.time() + 0.3, now=time.time()) is True
    assert state.add_once(brief, until=time.time() + 60, now=time.time()) is False
    time.sleep(0.5)
    assert state.add_once(brief, until=time.time() + 60, now=time.time()) is True  # run out: taken again
