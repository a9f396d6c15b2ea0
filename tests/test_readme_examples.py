"""README's resource-server and API-key examples, run as written against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import jwt
import pytest
import requests

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str, language: str = "python") -> str:
    match = re.search(rf"<!-- example: {marker} -->\n```{language}\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no example {marker}"
    return match.group(1)


@pytest.fixture
def example(live_server, settings):
    settings.ISSUER = live_server.url
    namespace: dict = {}
    code = readme_block("resource-server-python").replace("https://auth.example.com", live_server.url)
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    return namespace


def get_token(live_server, client, secret, **data):
    response = requests.post(
        f"{live_server.url}/oauth/token", data={"grant_type": "client_credentials", **data},
        auth=(client.client_id, secret), timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_python_example_verifies_our_tokens(example, live_server, transactional_db, make_client):
    client, secret = make_client(allowed_scopes=["invoices:read"], audiences=["https://api.example.com"])
    claims = example["verify_access_token"](get_token(live_server, client, secret), "invoices:read")
    assert claims["client_id"] == client.client_id

    with pytest.raises(jwt.InvalidTokenError, match="scope"):
        example["verify_access_token"](get_token(live_server, client, secret), "invoices:write")


def test_python_example_refuses_other_audiences_and_follows_rotation(
    example, live_server, transactional_db, make_client
):
    other, other_secret = make_client(allowed_scopes=["invoices:read"], audiences=["https://other.example.com"])
    with pytest.raises(jwt.InvalidAudienceError):
        example["verify_access_token"](get_token(live_server, other, other_secret), "invoices:read")

    from tokens.keys import key_rotate

    client, secret = make_client(allowed_scopes=["invoices:read"], audiences=["https://api.example.com"])
    example["verify_access_token"](get_token(live_server, client, secret), "invoices:read")
    key_rotate()
    # PyJWT refetches the JWKS for an unknown kid at most once per cooldown: let it pass.
    example["jwks"].cooldown_duration = 0
    claims = example["verify_access_token"](get_token(live_server, client, secret), "invoices:read")
    assert claims["sub"] == client.client_id


def test_private_key_jwt_example_gets_a_token(live_server, settings, transactional_db, tmp_path, monkeypatch):
    """README's private_key_jwt section as written: its openssl commands, its createclient, its Python."""
    import io
    import shlex
    import shutil
    import subprocess

    from django.core.management import call_command

    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    settings.ISSUER = live_server.url
    monkeypatch.chdir(tmp_path)
    section = README.read_text().split("### Keys instead of secrets", 1)[1]
    shell = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in shell.replace("\\\n", " ").splitlines()]
    for command in [c for c in commands if c.startswith("openssl ")]:
        subprocess.run(shlex.split(command), check=True, capture_output=True, timeout=30)
    (createclient,) = [c for c in commands if "createclient" in c]
    args = shlex.split(createclient.split("createclient", 1)[1])
    out = io.StringIO()
    call_command("createclient", *args, stdout=out)
    assert out.getvalue().splitlines() == ["Client ID: payments", "Authentication: private_key_jwt (no secret)"]
    code = readme_block("private-key-jwt-python").replace("http://127.0.0.1:8000", live_server.url)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    claims = jwt.decode(namespace["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["scope"]) == ("payments", "payments:write")
def test_api_key_curl_example_runs_as_written(live_server, transactional_db, make_client, settings):
    """The "API keys" block, with the placeholders a reader fills in (the secrets, the key on stdin)."""
    import json
    import subprocess

    from clients.services import api_key_create

    settings.ISSUER = live_server.url
    job, job_secret = make_client(client_id="export-job", allowed_scopes=["clients:read", "invoices:read"])
    _, api_secret = make_client(client_id="my-api")
    key = api_key_create(client=job, name="nightly cron", scopes=["clients:read"]).api_key
    script = (
        readme_block("api-keys-curl", "sh")
        .replace("http://127.0.0.1:8000", live_server.url)
        .replace("'my-api:ascs_...'", f"'my-api:{api_secret}'")
        .replace("'export-job:ascs_...'", f"'export-job:{job_secret}'")
    )
    done = subprocess.run(["bash", "-e", "-c", script], input=key + "\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    decoder, text, answers = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    client, active, revoked, inactive = answers
    assert client["client_id"] == "export-job"
    assert {k: active[k] for k in ("active", "token_type", "scope", "client_id", "sub")} == {
        "active": True, "token_type": "Bearer", "scope": "clients:read", "client_id": "export-job",
        "sub": "export-job",
    }
    assert set(active) == {"active", "token_type", "scope", "client_id", "sub", "exp", "iat"}
    assert (revoked, inactive) == ({}, {"active": False})


@pytest.fixture
def dpop_example(example):
    code = readme_block("resource-server-dpop-python")
    exec(compile(code, "README.md", "exec"), example)  # noqa: S102  (continues the block above)
    return example


def test_dpop_example_verifies_a_bound_token_and_its_proof(dpop_example, live_server, transactional_db,
                                                          make_client):
    import time
    import uuid

    from tests.workload_issuer import new_key
    from tokens.dpop import access_token_hash

    client, secret = make_client(allowed_scopes=["invoices:read"], audiences=["https://api.example.com"])
    key = new_key("ES256")
    jwk = key.public_jwk(alg=False, use=None)

    def proof(htm: str, htu: str, **claims) -> str:
        body = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time()), **claims}
        return key.mint(body, header_overrides={"typ": "dpop+jwt", "jwk": jwk, "kid": None})

    response = requests.post(
        f"{live_server.url}/oauth/token", data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret), headers={"DPoP": proof("POST", f"{live_server.url}/oauth/token")},
        timeout=5,
    )
    assert response.json()["token_type"] == "DPoP", response.text
    token = response.json()["access_token"]
    url = "https://api.example.com/invoices"
    good = proof("GET", url, ath=access_token_hash(token))
    verify = dpop_example["verify_dpop_request"]
    claims = verify("GET", url, f"DPoP {token}", good, "invoices:read")
    assert claims["cnf"]["jkt"]
    with pytest.raises(jwt.InvalidTokenError, match="used before"):
        verify("GET", url, f"DPoP {token}", good, "invoices:read")
    with pytest.raises(jwt.InvalidTokenError, match="Authorization: DPoP"):
        verify("GET", url, f"Bearer {token}", proof("GET", url, ath=access_token_hash(token)), "invoices:read")
    with pytest.raises(jwt.InvalidTokenError, match="another request"):
        verify("POST", url, f"DPoP {token}", proof("GET", url, ath=access_token_hash(token)), "invoices:read")
    with pytest.raises(jwt.InvalidTokenError, match="another token"):
        verify("GET", url, f"DPoP {token}", proof("GET", url, ath=access_token_hash(token + "x")), "invoices:read")
    other = new_key("ES256")
    stolen = other.mint({"jti": "x", "htm": "GET", "htu": url, "iat": int(time.time()),
                         "ath": access_token_hash(token)},
                        header_overrides={"typ": "dpop+jwt", "jwk": other.public_jwk(alg=False, use=None),
                                          "kid": None})
    with pytest.raises(jwt.InvalidTokenError, match="another key"):
        verify("GET", url, f"DPoP {token}", stolen, "invoices:read")
