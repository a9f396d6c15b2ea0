"""An assertion is used once on every worker and node (DESIGN §9.1, §9.8): two gunicorn nodes
of one deployment, two workers each, sharing the database (the embedded default, no Redis)
or Redis; the same assertion sent to all of them at once gets exactly one token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live import LiveServer, live_nodes, require_local_redis
from tests.workload_issuer import client_assertion_claims, jwk_set, new_key

pytestmark = pytest.mark.live

ISSUER = "https://auth.test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = new_key("ES256", kid="replay")
ROUNDS = 15
SENDERS = 6  # concurrent requests per assertion, spread over both nodes


@pytest.fixture(params=["database", "redis"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path, gunicorn_database_url: str) -> Iterator[list[LiveServer]]:
    settings = {"FAILED_AUTH_RATE_PER_CLIENT": "off", "FAILED_AUTH_RATE_PER_IP": "off"}
    if request.param == "redis":
        require_local_redis()
        settings["REDIS_URL"] = "redis://127.0.0.1:6379/12"  # jti keys are random: nothing to clear
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwk_set(KEY)))
    createclient = ("signer", "--client-id", "signer", "--auth-method", "private_key_jwt", "--jwks-file", str(jwks))
    with live_nodes(tmp_path, database_url=gunicorn_database_url, count=2, createclient=createclient,
                    ISSUER=ISSUER, **settings) as servers:
        yield servers


def test_concurrent_requests_with_one_assertion_get_exactly_one_token(nodes: list[LiveServer]) -> None:
    sessions = [requests.Session() for _ in range(SENDERS)]
    for session, server in zip(sessions, nodes * SENDERS, strict=False):
        session.get(f"{server.base_url}/healthz", timeout=5)  # connected before the race
    for _ in range(ROUNDS):
        token = KEY.mint(client_assertion_claims("signer", audience=ISSUER))
        barrier = threading.Barrier(SENDERS)
        statuses: list[int] = []

        def send(index: int, token: str, barrier: threading.Barrier, statuses: list[int]) -> None:
            server = nodes[index % len(nodes)]
            barrier.wait(timeout=10)
            response = sessions[index].post(
                f"{server.base_url}/oauth/token", timeout=10,
                data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": token},
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=send, args=(index, token, barrier, statuses)) for index in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(statuses) == [200] + [401] * (SENDERS - 1)
