"""What callers see when PostgreSQL or Redis goes away, and under load.

Every test here runs gunicorn as in production on a fresh PostgreSQL database of its
own on the machine's cluster (127.0.0.1:5432), whatever the suite's DATABASE_URL, so
these run in both passes of CI.  A test that stops a service always starts it again
in ``finally`` and waits until it answers; outages last a few seconds, since other
runs share the cluster.  ``-s`` shows the figures measured.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import jwt
import pytest
import requests

from clients.secrets import generate_secret
from tests.live import (
    LOCAL_POSTGRES,
    LOCAL_REDIS,
    LiveServer,
    fresh_postgres_database,
    live_nodes,
    postmaster_started,
    require_local_postgres,
    require_local_redis,
    services_to_ourselves,
)

pytestmark = [pytest.mark.live, pytest.mark.chaos]

ISSUER = "https://auth.test"  # the public URL; TLS ends at the load balancer
GRANT = {"grant_type": "client_credentials"}
# Well formed (its checksum passes), so refusing it takes the database's word.
WRONG_SECRET = generate_secret()
# Fails the checksum: refused without asking the database.
MISTYPED_SECRET = WRONG_SECRET[:-1] + ("A" if WRONG_SECRET[-1] != "A" else "B")
LOAD_REQUESTS = 5000
LOAD_CONCURRENCY = 32
BAD_EVERY = 20  # 5% of the load uses a wrong secret or an unknown client


# --- the machine's services -----------------------------------------------------------------


def _postgres_cluster() -> tuple[str, str]:
    """Version and name of the local cluster on port 5432 (as ``pg_lsclusters`` lists it)."""
    if os.geteuid() != 0:
        pytest.skip("stopping and starting the local PostgreSQL (pg_ctlcluster) needs root")
    try:
        listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        pytest.skip("needs pg_lsclusters/pg_ctlcluster to stop and start the local PostgreSQL")
    for line in listing.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name
    pytest.skip("no local PostgreSQL cluster on port 5432 to stop and start")


def _postgres_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], timeout=10).returncode == 0


@dataclass
class Outage:
    stop_begun: float = 0.0
    stopped: float = 0.0
    start_begun: float = 0.0
    ready: float = 0.0


def _forget_suite_connections() -> None:
    """The suite's own connections (PostgreSQL pass) died with the server: drop them, so the
    next test connects afresh instead of failing on a closed socket."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # noqa: BLE001  (already broken: nothing to close)
            connection.connection = None


@contextmanager
def postgres_stopped() -> Iterator[Outage]:
    """Stop the local PostgreSQL (fast shutdown) for the block; always start it again and
    wait until it accepts connections.  ``ready`` is when ``pg_isready`` first succeeds,
    polled while ``pg_ctlcluster start`` runs (which returns about two seconds later)."""
    version, name = _postgres_cluster()
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    outage = Outage(stop_begun=time.monotonic())
    try:
        subprocess.run([*ctl, "stop", "-m", "fast"], check=True, capture_output=True, timeout=60)
        outage.stopped = time.monotonic()
        yield outage
    finally:
        outage.start_begun = time.monotonic()
        starting = None
        if not _postgres_ready():
            starting = subprocess.Popen([*ctl, "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not _postgres_ready():
            assert time.monotonic() < deadline, "PostgreSQL did not come back within 60 s"
            time.sleep(0.05)
        outage.ready = time.monotonic()
        if starting is not None:  # reaped in the background: recovery is measured from `ready` on
            threading.Thread(target=starting.wait, daemon=True).start()
        _forget_suite_connections()


def _redis_answers() -> bool:
    try:
        with socket.create_connection(LOCAL_REDIS, timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_stopped() -> Iterator[None]:
    """Stop the local Redis for the block; always start it again and wait until it answers."""
    host, port = LOCAL_REDIS
    try:
        subprocess.run(["redis-cli", "-h", host, "-p", str(port), "shutdown", "nosave"],
                       capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while _redis_answers():
            assert time.monotonic() < deadline, "Redis did not stop"
            time.sleep(0.05)
        yield
    finally:
        if not _redis_answers():
            subprocess.run(
                ["redis-server", "--daemonize", "yes", "--bind", host, "--port", str(port),
                 "--save", "", "--appendonly", "no"],
                capture_output=True, timeout=30,
            )
        deadline = time.monotonic() + 30
        while not _redis_answers():
            assert time.monotonic() < deadline, "Redis did not come back within 30 s"
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def _services_to_ourselves() -> Iterator[None]:
    with services_to_ourselves():
        yield


# --- a node of our own ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One gunicorn node (2 workers) on a fresh database of the local PostgreSQL; limits
    high enough that the load's wrong secrets never lock its client out."""
    require_local_postgres()
    _postgres_cluster()
    with fresh_postgres_database(LOCAL_POSTGRES, prefix="authserver_chaos") as database_url, live_nodes(
        tmp_path_factory.mktemp("chaos"), database_url=database_url, count=1, ISSUER=ISSUER,
        FAILED_AUTH_RATE_PER_IP="1000000/h", FAILED_AUTH_RATE_PER_CLIENT="1000000/h",
    ) as nodes:
        yield nodes[0]


def _is_json(response: requests.Response) -> bool:
    if response.headers.get("Content-Type", "").split(";")[0] != "application/json":
        return False
    try:
        response.json()
    except ValueError:
        return False
    return True


def _unavailable(response: requests.Response) -> bool:
    """A JSON 503 ``temporarily_unavailable`` (or 500 ``server_error``) with Retry-After."""
    if response.status_code not in (500, 503) or not _is_json(response) or "Retry-After" not in response.headers:
        return False
    body = response.json()
    expected = "temporarily_unavailable" if response.status_code == 503 else "server_error"
    return body.get("error") == expected and "access_token" not in body


def _token(node: LiveServer, secret: str | None = None, client_id: str | None = None) -> requests.Response:
    auth = (client_id or node.client_id, secret or node.client_secret)
    return requests.post(f"{node.base_url}/oauth/token", data=GRANT, auth=auth, timeout=10)


def _verifier(node: LiveServer) -> Callable[[str], dict]:
    keyset = jwt.PyJWKSet.from_dict(requests.get(f"{node.base_url}/.well-known/jwks.json", timeout=5).json())

    def verify(token: str) -> dict:
        key = keyset[jwt.get_unverified_header(token)["kid"]]
        return jwt.decode(token, key=key, algorithms=["ES256", "RS256", "EdDSA"], issuer=ISSUER, audience=ISSUER)

    return verify


# --- persistent connections cut --------------------------------------------------------------


def test_cut_persistent_connections_are_replaced_without_an_error(node):
    """PostgreSQL ends every session of the node (as a failover or an idle timeout on a
    proxy would): the next requests reconnect silently.  The token path's registry read
    doubles as Django's CONN_HEALTH_CHECKS probe (clients.registry), so this proves that
    shortcut loses nothing."""
    import psycopg

    database = node.env["DATABASE_URL"].rsplit("/", 1)[1]
    for _ in range(3):
        for response in [_token(node) for _ in range(8)]:  # every worker holds a connection
            assert response.status_code == 200, response.text
        with psycopg.connect(LOCAL_POSTGRES.replace("postgres://", "postgresql://"), autocommit=True) as admin:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()[0]
        assert cut >= 1
        answers = [_token(node) for _ in range(8)] + [
            requests.get(f"{node.base_url}/readyz", timeout=10) for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers if not a.ok]


# --- database down --------------------------------------------------------------------------


def test_database_down_every_answer_is_json_and_no_token_is_issued_then_recovery(node):
    for _ in range(20):  # both workers hold a connection and a key ring
        assert _token(node).status_code == 200
    held = _token(node).json()["access_token"]
    auth = (node.client_id, node.client_secret)

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{node.base_url}{path}", timeout=10, **kwargs)

    with postgres_stopped() as outage:
        answers = {
            "token": [_token(node) for _ in range(6)],
            "token, wrong secret": [_token(node, WRONG_SECRET) for _ in range(6)],
            "token, unknown client": [_token(node, WRONG_SECRET, "nobody") for _ in range(4)],
            "token, mistyped secret": [_token(node, MISTYPED_SECRET) for _ in range(2)],
            "introspect": [call("POST", "/oauth/introspect", data={"token": held}, auth=auth) for _ in range(4)],
            "revoke": [call("POST", "/oauth/revoke", data={"token": held}, auth=auth) for _ in range(2)],
            "readyz": [call("GET", "/readyz") for _ in range(4)],
            "healthz": [call("GET", "/healthz") for _ in range(4)],
            "jwks": [call("GET", "/.well-known/jwks.json") for _ in range(4)],
        }
        answered = time.monotonic()
    print(f"\n[database down] PostgreSQL stopped in {outage.stopped - outage.stop_begun:.2f} s; answers:")
    for kind, responses in answers.items():
        print(f"  {kind}: {dict(Counter(r.status_code for r in responses))}")
    for kind, responses in answers.items():
        for response in responses:
            assert _is_json(response), (kind, response.status_code, response.headers, response.text[:200])
            assert "access_token" not in response.json(), kind
    for kind in ("token", "token, wrong secret", "introspect", "revoke"):
        assert all(_unavailable(r) for r in answers[kind]), [(r.status_code, r.text) for r in answers[kind]]
    assert all(_unavailable(r) for r in answers["token, unknown client"])
    assert {r.status_code for r in answers["token, mistyped secret"]} == {401}  # no database needed
    assert {(r.status_code, r.json()["status"]) for r in answers["healthz"]} == {(200, "ok")}
    for response in answers["readyz"]:
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.json()["checks"]["database"] == "unavailable"
    # Keys are parsed once per process: the JWKS keeps being served from memory.
    assert {r.status_code for r in answers["jwks"]} == {200}

    # Recovery by itself, no restart: time to the first token once PostgreSQL accepts connections.
    deadline = outage.ready + 30
    while (response := _token(node)).status_code != 200:
        assert _unavailable(response), (response.status_code, response.text)
        assert time.monotonic() < deadline, "no token 30 s after PostgreSQL came back"
        time.sleep(0.02)
    recovered = time.monotonic()
    print(f"[database down] outage {outage.ready - outage.stop_begun:.2f} s (answers took "
          f"{answered - outage.stopped:.2f} s); first token {1000 * (recovered - outage.ready):.0f} ms "
          f"after pg_isready")
    assert recovered - outage.ready < 5
    assert _verifier(node)(response.json()["access_token"])["client_id"] == node.client_id
    assert call("GET", "/readyz").status_code == 200
    introspected = call("POST", "/oauth/introspect", data={"token": held}, auth=auth)
    assert introspected.json()["active"] is True  # the revocation attempted during the outage did not happen


# --- Redis down -----------------------------------------------------------------------------


def test_redis_down_tokens_keep_flowing_and_wrong_secrets_are_still_refused(tmp_path):
    require_local_postgres()
    require_local_redis()
    with fresh_postgres_database(LOCAL_POSTGRES, prefix="authserver_chaos") as database_url, live_nodes(
        tmp_path, database_url=database_url, count=1, ISSUER=ISSUER, REDIS_URL="redis://127.0.0.1:6379/14",
        createclient=(f"redis-{time.time_ns()}",), FAILED_AUTH_RATE_PER_IP="100000/h",
    ) as nodes:
        node = nodes[0]
        assert _token(node).status_code == 200
        assert _token(node, WRONG_SECRET).status_code == 401
        with redis_stopped():
            good = [_token(node) for _ in range(10)]
            wrong = [_token(node, WRONG_SECRET) for _ in range(5)]
            unknown = _token(node, WRONG_SECRET, "nobody")
        print(f"\n[redis down] good secret: {dict(Counter(r.status_code for r in good))}, "
              f"wrong secret: {dict(Counter(r.status_code for r in wrong))}")
        verify = _verifier(node)
        for response in good:
            assert response.status_code == 200, response.text
            assert verify(response.json()["access_token"])["client_id"] == node.client_id
        for response in [*wrong, unknown]:
            assert response.status_code == 401
            assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert _token(node).status_code == 200  # and after Redis is back
        log = node.log.read_text()  # type: ignore[union-attr]
        assert "rate limiting skipped: cache unavailable" in log


# --- load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    number: int
    bad: bool
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection error, timeout)
    json: bool
    body: dict = field(default_factory=dict)
    retry_after: str | None = None


def _drive(node: LiveServer, *, stop: Callable[[list[Answer]], bool], limit: int, seconds: float) -> list[Answer]:
    """Token requests from ``LOAD_CONCURRENCY`` threads, each with its own Session, until
    ``stop(answers)`` says so (checked by each thread before each request), at most ``limit``
    requests and ``seconds``.  Every ``BAD_EVERY``-th request uses a wrong secret or an unknown
    client.  After a 5xx a thread waits 20 ms, as a well-behaved caller would (briefly)."""
    answers: list[Answer] = []
    numbers = itertools.count()
    deadline = time.monotonic() + seconds
    url = f"{node.base_url}/oauth/token"

    def worker() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline and not stop(answers):
                number = next(numbers)
                if number >= limit:
                    return
                bad = number % BAD_EVERY == BAD_EVERY - 1
                if not bad:
                    auth = (node.client_id, node.client_secret)
                elif number // BAD_EVERY % 2:
                    auth = (node.client_id, WRONG_SECRET)
                else:
                    auth = (f"unknown-{number}", WRONG_SECRET)
                started = time.monotonic()
                try:
                    response = session.post(url, data=GRANT, auth=auth, timeout=10)
                except requests.RequestException:
                    answers.append(Answer(number, bad, started, time.monotonic(), None, False))
                    continue
                ended = time.monotonic()
                is_json = _is_json(response)
                answers.append(Answer(
                    number, bad, started, ended, response.status_code, is_json,
                    response.json() if is_json else {}, response.headers.get("Retry-After"),
                ))
                if response.status_code >= 500:
                    time.sleep(0.02)

    threads = [threading.Thread(target=worker) for _ in range(LOAD_CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(answers, key=lambda answer: answer.started)


def _correct(answer: Answer) -> bool:
    """Outside an outage: a token for a good secret, ``invalid_client`` for a bad one."""
    if answer.bad:
        return answer.status == 401 and answer.json and answer.body.get("error") == "invalid_client"
    return answer.status == 200 and answer.json and "access_token" in answer.body


def _statuses(answers: list[Answer]) -> dict[str, int]:
    counts = Counter(f"{'bad' if a.bad else 'good'} {a.status if a.status is not None else 'no answer'}"
                     for a in answers)
    return dict(sorted(counts.items()))


def _check_tokens(node: LiveServer, answers: list[Answer]) -> int:
    """Every 200 carries a token that verifies against the JWKS; none went to a bad secret."""
    verify = _verifier(node)
    jtis = set()
    for answer in answers:
        if answer.status == 200:
            assert not answer.bad, f"request {answer.number} got a token for a wrong secret"
            claims = verify(answer.body["access_token"])
            assert claims["client_id"] == node.client_id
            jtis.add(claims["jti"])
    issued = sum(answer.status == 200 for answer in answers)
    assert len(jtis) == issued, "a jti was issued twice"
    return issued


def _latency_ms(answers: list[Answer]) -> str:
    if not answers:
        return "-"
    latencies = sorted(a.ended - a.started for a in answers)
    p50, p99 = latencies[len(latencies) // 2], latencies[len(latencies) * 99 // 100]
    return f"p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms, max {1000 * latencies[-1]:.0f} ms"


def test_load_5000_token_requests_at_concurrency_32_without_one_error(node):
    for attempt in (1, 2):
        restarted = postmaster_started()
        began = time.monotonic()
        answers = _drive(node, stop=lambda answers: False, limit=LOAD_REQUESTS, seconds=120)
        took = time.monotonic() - began
        print(f"\n[load] {len(answers)} requests, concurrency {LOAD_CONCURRENCY}, {took:.1f} s "
              f"({len(answers) / took:.0f}/s); {_statuses(answers)}; {_latency_ms(answers)}")
        if postmaster_started() == restarted:
            break
        print(f"[load] attempt {attempt}: PostgreSQL was restarted by someone else meanwhile; figures void")
    else:
        pytest.fail("PostgreSQL was restarted by someone else during both attempts")
    assert len(answers) == LOAD_REQUESTS, "the load did not finish within 120 s"
    wrong = [a for a in answers if not _correct(a)]
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:3]}"
    assert _check_tokens(node, answers) == sum(not a.bad for a in answers)


def _load_with_a_restart(node: LiveServer, *, after_recovery_needed: int) -> tuple[list[Answer], Outage, bool]:
    """The load, with PostgreSQL stopped ~4 s in and started ~2 s later; also whether anyone
    else restarted PostgreSQL meanwhile (then the figures are void)."""
    outage: Outage | None = None

    def stop(answers: list[Answer]) -> bool:
        # Enough requests in all, and enough sent once PostgreSQL was back.
        if outage is None or not outage.ready or len(answers) < LOAD_REQUESTS:
            return False
        return sum(a.started > outage.ready for a in answers[-after_recovery_needed:]) >= after_recovery_needed

    restarted = postmaster_started()
    began = time.monotonic()
    collected: list[list[Answer]] = []
    driver = threading.Thread(target=lambda: collected.append(
        _drive(node, stop=stop, limit=4 * LOAD_REQUESTS, seconds=150)))
    driver.start()
    try:
        while driver.is_alive() and time.monotonic() - began < 4:
            time.sleep(0.05)
        disturbed = postmaster_started() != restarted
        with postgres_stopped() as outage:
            time.sleep(2)
        ours = postmaster_started()
    finally:
        driver.join()
    disturbed = disturbed or postmaster_started() != ours
    return collected[0], outage, disturbed


def test_load_with_postgresql_restarted_in_the_middle(node):
    """No wrong answer at any time, only JSON 5xx while PostgreSQL is down, full recovery after."""
    after_recovery_needed = 1000
    for attempt in (1, 2):
        began = time.monotonic()
        answers, outage, disturbed = _load_with_a_restart(node, after_recovery_needed=after_recovery_needed)
        took = time.monotonic() - began
        if not disturbed:
            break
        print(f"\n[load + PostgreSQL restart] attempt {attempt}: PostgreSQL was restarted by someone else "
              "meanwhile; figures void")
    else:
        pytest.fail("PostgreSQL was restarted by someone else during both attempts")
    phases = {
        "before": [a for a in answers if a.ended < outage.stop_begun],
        "stopping": [a for a in answers if a.ended >= outage.stop_begun and a.started < outage.stopped],
        "down": [a for a in answers if a.started >= outage.stopped and a.ended <= outage.start_begun],
        "starting": [
            a for a in answers if outage.stopped <= a.started <= outage.ready and a.ended > outage.start_begun
        ],
        "after": [a for a in answers if a.started > outage.ready],
    }
    unavailable = [a for a in answers if a.status in (500, 503)]
    first_token = min((a.ended for a in answers if a.status == 200 and a.ended > outage.start_begun), default=None)
    last_unavailable = max((a.ended for a in unavailable), default=None)
    print(f"\n[load + PostgreSQL restart] {len(answers)} requests in {took:.1f} s; PostgreSQL "
          f"stopping {outage.stopped - outage.stop_begun:.2f} s, down {outage.start_begun - outage.stopped:.2f} s, "
          f"starting (pg_ctlcluster start until pg_isready) {outage.ready - outage.start_begun:.2f} s")
    for phase, group in phases.items():
        print(f"  {phase}: {len(group)} requests {_statuses(group)}; {_latency_ms(group)}")
    first_after_ready = min((a.ended for a in answers if a.status == 200 and a.ended > outage.ready), default=None)
    if first_token is not None and last_unavailable is not None and first_after_ready is not None:
        print(f"  relative to pg_isready: first token since the restart began "
              f"{1000 * (first_token - outage.ready):+.0f} ms, first token answered after it "
              f"{1000 * (first_after_ready - outage.ready):+.0f} ms, last 5xx answered "
              f"{1000 * (last_unavailable - outage.ready):+.0f} ms; max latency overall "
              f"{1000 * max(a.ended - a.started for a in answers):.0f} ms")

    assert all(a.status is not None for a in answers), "a request got no HTTP answer"
    assert all(_correct(a) for a in phases["before"]), [a for a in phases["before"] if not _correct(a)][:3]
    assert phases["down"] and not any(a.status == 200 for a in phases["down"])
    for answer in answers:
        # Never a token for a bad secret, never a refusal of a good one; otherwise a JSON 5xx.
        assert _correct(answer) or (
            answer.status in (500, 503) and answer.json and answer.retry_after
            and answer.body.get("error") in ("temporarily_unavailable", "server_error")
            and "access_token" not in answer.body
        ), answer
    assert all(a.ended >= outage.stop_begun for a in unavailable)
    # Recovery by itself: no 5xx a second after PostgreSQL accepts connections again.
    assert last_unavailable is not None and last_unavailable - outage.ready < 1, "5xx long after the restart"
    assert first_token is not None and first_token - outage.ready < 5
    assert all(_correct(a) for a in answers[-after_recovery_needed:])
    _check_tokens(node, answers)
