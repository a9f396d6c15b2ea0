"""Several nodes, one issuer.

Two gunicorn servers (2 workers each) on their own ports serve one issuer, as behind a
load balancer: one fresh PostgreSQL database on the machine's cluster (whatever the
suite's DATABASE_URL), one Redis, the same keys.  A change made through one node must
hold on every process of the other: we poll the other node, note which worker
answered each request (its access log), and measure how long the old answer survived.
``-s`` shows the delays measured.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import jwt
import pytest
import requests

from tests.live import (
    LOCAL_POSTGRES,
    Call,
    LiveServer,
    batch,
    by_worker,
    call,
    fresh_postgres_database,
    live_nodes,
    manage,
    on_every_worker,
    require_local_postgres,
    require_local_redis,
    served_by,
    services_to_ourselves,
)

pytestmark = pytest.mark.live

ISSUER = "https://auth.test"  # the public URL; TLS ends at the load balancer
GRANT = {"grant_type": "client_credentials"}
# A change made through one node holds on every process of the other within this.
PROPAGATION_BOUND = 2.0
# SIGNING_KEY_REFRESH is 1 s on these nodes; a rotation reaches every worker within this.
ROTATION_BOUND = 5.0
# Per client and address, shared by both nodes through Redis; high enough for the polls
# below (sequential requests may reach one worker many times in a row before the other).
FAILURES_ALLOWED = 300
_client_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory):
    require_local_postgres()
    require_local_redis()
    with fresh_postgres_database(LOCAL_POSTGRES, prefix="authserver_multinode") as database_url, live_nodes(
        tmp_path_factory.mktemp("multinode"), database_url=database_url, count=2, ISSUER=ISSUER,
        REDIS_URL="redis://127.0.0.1:6379/14",
        # Per address high (every test calls from 127.0.0.1); per client id low enough to reach.
        FAILED_AUTH_RATE_PER_IP="100000/h", FAILED_AUTH_RATE_PER_CLIENT=f"{FAILURES_ALLOWED}/d",
        createclient=("ops-bot", "--scope", "clients:read", "--scope", "clients:write"),
    ) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _services_to_ourselves():
    """Other runs' chaos tests on this machine wait: a restart would void the delays measured."""
    with services_to_ourselves():
        yield


def token(node: LiveServer, client_id: str, secret: str) -> Call:
    return call(node, "/oauth/token", data=GRANT, auth=(client_id, secret))


def introspect(node: LiveServer, access_token: str) -> Call:
    return call(node, "/oauth/introspect", data={"token": access_token}, auth=(node.client_id, node.client_secret))


def management(node: LiveServer) -> dict[str, str]:
    """A bearer header for the management API, from ``node`` (ops-bot holds clients:write)."""
    issued = token(node, node.client_id, node.client_secret).response
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def new_client(node: LiveServer) -> tuple[str, str]:
    """A client registered through ``node``'s management API: (client_id, secret)."""
    client_id = f"svc-{next(_client_numbers)}-{time.time_ns()}"
    created = call(node, "/client", json={"client_id": client_id, "client_name": "multinode", "scope": "read"},
                   headers=management(node)).response
    assert created.status_code == 201, created.text
    return client_id, created.json()["client_secret"]


@dataclass(frozen=True)
class Propagation:
    last_old: float | None  # seconds after the change the old answer was last seen (None: never)
    first_new: float  # seconds after the change the new answer was first seen

    def describe(self) -> str:
        last = "never" if self.last_old is None else f"{1000 * self.last_old:+.0f} ms"
        return f"old answer last seen {last}, new answer first seen {1000 * self.first_new:+.0f} ms"


def watch(
    node: LiveServer, send: Callable[[], Call], changed: Callable[[requests.Response], bool], *,
    since: float, max_changed: int = 250,
) -> Propagation:
    """Poll ``node`` after a change made elsewhere at ``since`` until each of its workers
    has given the new answer; check that none went back to the old one afterwards."""
    calls: list[Call] = []
    deadline = since + PROPAGATION_BOUND + 3
    while True:
        calls += batch(send)
        served = served_by(node, calls)
        changed_by = {served[c.number] for c in calls if c.number in served and changed(c.response)}
        enough = sum(changed(c.response) for c in calls) >= max_changed
        if len(changed_by) == 2 or enough or time.monotonic() > deadline:
            break
    assert len(changed_by) == 2, f"{node.name}: workers {set(served.values()) - changed_by} never changed"
    for worker, served_calls in by_worker(node, calls).items():  # in the order the worker served them
        answers = [changed(c.response) for c in served_calls]
        assert all(answers[answers.index(True):]), f"{node.name}: worker {worker} went back: {answers}"
    old = [c.at - since for c in calls if not changed(c.response)]
    return Propagation(max(old) if old else None, min(c.at - since for c in calls if changed(c.response)))


def invalid_client(response: requests.Response) -> bool:
    return response.status_code == 401 and response.json() == {
        "error": "invalid_client", "error_description": "Client authentication failed.",
    }


def verify(jwks: dict, access_token: str) -> dict:
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(access_token)["kid"]]
    return jwt.decode(access_token, key=key, algorithms=["ES256", "RS256", "EdDSA"], issuer=ISSUER, audience=ISSUER)


def kid(call: Call) -> str:
    return jwt.get_unverified_header(call.response.json()["access_token"])["kid"]


# ---------------------------------------------------------------------------------------------


def test_a_token_from_one_node_verifies_and_introspects_on_the_other(nodes):
    a, b = nodes
    client_id, secret = new_client(a)
    for issuer_node, other in ((a, b), (b, a)):
        issued = on_every_worker(issuer_node, lambda n=issuer_node: token(n, client_id, secret))
        assert all(c.response.status_code == 200 for c in issued)
        jwks = call(other, "/.well-known/jwks.json", method="GET").response.json()
        for c in issued:
            claims = verify(jwks, c.response.json()["access_token"])
            assert (claims["iss"], claims["client_id"], claims["scope"]) == (ISSUER, client_id, "read")
        access_token = issued[-1].response.json()["access_token"]
        introspected = on_every_worker(other, lambda o=other, t=access_token: introspect(o, t))
        assert all(c.response.json()["active"] is True for c in introspected)
        assert introspected[0].response.json()["client_id"] == client_id
    # One deployment: the same published keys and metadata on both.
    assert call(a, "/.well-known/jwks.json", method="GET").response.json() == \
        call(b, "/.well-known/jwks.json", method="GET").response.json()
    assert call(a, "/.well-known/oauth-authorization-server", method="GET").response.json() == \
        call(b, "/.well-known/oauth-authorization-server", method="GET").response.json()


def test_a_secret_reset_on_one_node_refuses_the_old_secret_on_the_other_at_once(nodes):
    a, b = nodes
    client_id, old = new_client(a)
    # Every worker of B has used the old secret (and cached what it caches).
    assert all(c.response.status_code == 200 for c in on_every_worker(b, lambda: token(b, client_id, old)))

    reset = call(a, f"/client/{quote(client_id, safe='')}/reset_secret", headers=management(a))
    assert reset.response.status_code == 200, reset.response.text
    new = reset.response.json()["client_secret"]
    seen = watch(b, lambda: token(b, client_id, old), invalid_client, since=reset.at)
    print(f"\n[secret reset on A] old secret on B: {seen.describe()}")
    assert seen.last_old is None or seen.last_old <= PROPAGATION_BOUND
    assert token(b, client_id, new).response.status_code == 200
    assert token(a, client_id, new).response.status_code == 200


def test_a_client_disabled_on_one_node_is_refused_on_the_other(nodes):
    a, b = nodes
    client_id, secret = new_client(a)
    warm = on_every_worker(b, lambda: token(b, client_id, secret))
    assert all(c.response.status_code == 200 for c in warm)
    held = warm[-1].response.json()["access_token"]

    disabled = call(a, f"/client/{quote(client_id, safe='')}", method="PATCH", json={"enabled": False},
                    headers=management(a))
    assert disabled.response.status_code == 200, disabled.response.text
    assert disabled.response.json()["enabled"] is False
    refused = watch(b, lambda: token(b, client_id, secret), invalid_client, since=disabled.at)
    inactive = watch(b, lambda: introspect(b, held), lambda r: r.json() == {"active": False}, since=disabled.at)
    print(f"\n[client disabled on A] token on B: {refused.describe()}; its token's introspection on B: "
          f"{inactive.describe()}")
    assert refused.last_old is None or refused.last_old <= PROPAGATION_BOUND
    assert inactive.last_old is None or inactive.last_old <= PROPAGATION_BOUND


def test_a_token_revoked_on_one_node_is_inactive_on_the_other(nodes):
    a, b = nodes
    client_id, secret = new_client(a)
    held = token(a, client_id, secret).response.json()["access_token"]
    assert all(c.response.json()["active"] is True for c in on_every_worker(b, lambda: introspect(b, held)))

    revoked = call(a, "/oauth/revoke", data={"token": held}, auth=(client_id, secret))
    assert revoked.response.status_code == 200
    seen = watch(b, lambda: introspect(b, held), lambda r: r.json() == {"active": False}, since=revoked.at)
    print(f"\n[token revoked on A] introspection on B: {seen.describe()}")
    assert seen.last_old is None or seen.last_old <= PROPAGATION_BOUND


def test_failed_authentications_on_one_node_count_on_the_other(nodes):
    """The limits' counters live in Redis: failures on A and on B add up to one lockout."""
    a, b = nodes
    client_id, secret = new_client(a)
    on_a, on_b = FAILURES_ALLOWED * 2 // 3, FAILURES_ALLOWED - FAILURES_ALLOWED * 2 // 3
    for node, count in ((a, on_a), (b, on_b)):
        for _ in range(count):
            assert invalid_client(token(node, client_id, secret[:-3] + "xyz").response)
    for node in (b, a):
        for presented in (secret[:-3] + "xyz", secret):  # locked out: even the right secret
            locked = token(node, client_id, presented).response
            assert locked.status_code == 429, (node.name, locked.text)
            assert locked.headers["Content-Type"] == "application/json"
            assert locked.headers["Cache-Control"] == "no-store"
            assert 1 <= int(locked.headers["Retry-After"]) <= 86400
            assert locked.json() == {
                "error": "temporarily_unavailable",
                "error_description": "Too many failed client authentications; retry later.",
            }
    print(f"\n[rate limits] {on_a} failures on A + {on_b} on B: locked out on both "
          f"(Retry-After {locked.headers['Retry-After']} s)")
    # Counted per client and address: another client from the same address is not affected.
    other_id, other_secret = new_client(b)
    assert token(a, other_id, other_secret).response.status_code == 200


def test_a_key_rotation_signs_on_every_worker_of_both_nodes_within_seconds(nodes):
    a, b = nodes
    client_id, secret = new_client(a)
    before = {node.name: on_every_worker(node, lambda n=node: token(n, client_id, secret)) for node in nodes}
    old_kids = {kid(c) for calls in before.values() for c in calls}
    assert len(old_kids) == 1
    workers = {node.name: set(served_by(node, before[node.name]).values()) for node in nodes}

    output = manage(a.env, "rotatekeys")
    rotated = time.monotonic()
    new_kid = re.search(r"kid=(\S+)", output)[1]  # type: ignore[index]
    assert {new_kid} != old_kids

    # Poll both nodes until each of the four workers signs with the new key (bounded).
    after: dict[str, list[Call]] = {node.name: [] for node in nodes}
    switched: dict[tuple[str, int], float] = {}
    while len(switched) < 4 and time.monotonic() < rotated + ROTATION_BOUND + 5:
        for node in nodes:
            after[node.name] += batch(lambda n=node: token(n, client_id, secret))
            served = served_by(node, after[node.name])
            for c in after[node.name]:
                if kid(c) == new_kid and c.number in served:
                    switched.setdefault((node.name, served[c.number]), c.at - rotated)
    delays = ", ".join(f"{name}/{pid} {1000 * delay:+.0f} ms" for (name, pid), delay in sorted(switched.items()))
    print(f"\n[rotatekeys against the shared database] new key first used by: {delays}")
    assert {(name, pid) for name, pids in workers.items() for pid in pids} == set(switched)
    assert max(switched.values()) <= ROTATION_BOUND

    for node in nodes:
        for worker, served_calls in by_worker(node, after[node.name]).items():  # in the order it served them
            kids = [kid(c) for c in served_calls]
            assert set(kids[kids.index(new_kid):]) == {new_kid}, f"{node.name}/{worker} went back: {kids}"
    # Old and new tokens verify against either node's JWKS, and introspect active on the other node.
    for node, other in ((a, b), (b, a)):
        jwks = call(other, "/.well-known/jwks.json", method="GET").response.json()
        assert {key["kid"] for key in jwks["keys"]} == old_kids | {new_kid}
        for c in [before[node.name][0], after[node.name][-1]]:
            verify(jwks, c.response.json()["access_token"])
            assert introspect(other, c.response.json()["access_token"]).response.json()["active"] is True


def _listeners(node: LiveServer) -> list[int]:
    """Backend pids of the node's change-feed listeners (clients.changefeed)."""
    import psycopg

    database = node.env["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(LOCAL_POSTGRES.replace("postgres://", "postgresql://"), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'authserver changefeed'",
            (database,),
        ).fetchall()
    return [row[0] for row in rows]


def test_changes_hold_with_the_change_feed_and_without_it(nodes):
    """On PostgreSQL every worker listens for registry changes (no query per token while
    nothing changes).  Cut the listeners' connections: a change made before they are back
    still holds at once (workers read the version again on every request), and once they
    are back, changes still reach every worker."""
    import psycopg

    a, b = nodes
    deadline = time.monotonic() + 10
    while len(_listeners(a) + _listeners(b)) < 4:  # 2 nodes x 2 workers
        assert time.monotonic() < deadline, "the workers' change feeds did not start"
        time.sleep(0.1)

    client_id, secret = new_client(a)
    assert all(c.response.status_code == 200 for c in on_every_worker(b, lambda: token(b, client_id, secret)))
    cut = _listeners(b)
    with psycopg.connect(LOCAL_POSTGRES.replace("postgres://", "postgresql://"), autocommit=True) as admin:
        for pid in cut:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    disabled = call(a, f"/client/{quote(client_id, safe='')}", method="PATCH", json={"enabled": False},
                    headers=management(a))
    assert disabled.response.status_code == 200, disabled.response.text
    refused = watch(b, lambda: token(b, client_id, secret), invalid_client, since=disabled.at)
    print(f"\n[change feed cut on B, client disabled on A] token on B: {refused.describe()}")
    assert refused.last_old is None or refused.last_old <= PROPAGATION_BOUND

    deadline = time.monotonic() + 15
    while len(set(_listeners(b)) - set(cut)) < 2:
        assert time.monotonic() < deadline, "the change feeds did not come back"
        time.sleep(0.1)
    enabled = call(a, f"/client/{quote(client_id, safe='')}", method="PATCH", json={"enabled": True},
                   headers=management(a))
    assert enabled.response.status_code == 200, enabled.response.text
    works = watch(b, lambda: token(b, client_id, secret), lambda r: r.status_code == 200, since=enabled.at)
    print(f"[change feed back on B, client enabled on A] token on B: {works.describe()}")
    assert works.last_old is None or works.last_old <= PROPAGATION_BOUND
