"""README's workload identity federation examples, run as written (bash, `python3 dev.py manage`,
curl) against a live gunicorn server, with a real issuer on 127.0.0.1 standing in for the
Kubernetes cluster, GitHub's token service and the SPIRE bundle endpoint."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live import LiveServer
from tests.workload_issuer import WorkloadIssuer, make_workload_issuer_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def example(marker: str) -> str:
    match = re.search(rf"<!-- example: {marker} -->\n```sh\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no example {marker}"
    return match.group(1)


def run(block: str, server: LiveServer, **env: str) -> str:
    if shutil.which("curl") is None:
        pytest.skip("no curl")
    script = block.replace("https://auth.example.com", server.base_url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env={**os.environ, **server.env, **env},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def access_token_claims(output: str) -> dict[str, object]:
    body = json.loads(output[output.index('{"access_token"'):].splitlines()[0])
    payload = body["access_token"].split(".")[1]
    import base64

    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_kubernetes(gunicorn_server: LiveServer, make_workload_issuer, tmp_path) -> None:
    cluster: WorkloadIssuer = make_workload_issuer(keys=["RS256"], issuer_path="/id/CLUSTER1")
    token_file = tmp_path / "token"
    token_file.write_text(cluster.kubernetes_token(audience=gunicorn_server.base_url))
    block = example("federation-kubernetes").replace(
        "https://oidc.eks.eu-west-1.amazonaws.com/id/CLUSTER1", cluster.issuer
    ).replace("/var/run/secrets/authserver/token", str(token_file))
    claims = access_token_claims(run(block, gunicorn_server))
    assert (claims["sub"], claims["scope"]) == ("payments", "payments:write")


def test_github_actions(gunicorn_server: LiveServer, make_workload_issuer) -> None:
    github: WorkloadIssuer = make_workload_issuer(keys=["RS256"])
    jwt = github.github_actions_token(audience=gunicorn_server.base_url, repository="acme/app")
    block = example("federation-github").replace("https://token.actions.githubusercontent.com", github.issuer)
    claims = access_token_claims(run(block, gunicorn_server, GITHUB_JWT=jwt))
    assert (claims["sub"], claims["scope"]) == ("deployer", "deploy:write")


def test_spiffe(gunicorn_server: LiveServer, make_workload_issuer) -> None:
    spire: WorkloadIssuer = make_workload_issuer(keys=["ES256"])
    spire.spiffe_bundle = True
    svid = spire.spiffe_svid(audience=gunicorn_server.base_url, spiffe_id="spiffe://example.org/ns/payments/sa/api")
    block = example("federation-spiffe").replace("https://spire.example.org/bundle", spire.jwks_uri)
    claims = access_token_claims(run(block, gunicorn_server, SVID=svid))
    assert (claims["sub"], claims["scope"]) == ("payments-spiffe", "payments:write")
