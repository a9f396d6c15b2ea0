"""README's resource-server example, run as written against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import jwt
import pytest
import requests

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str) -> str:
    match = re.search(rf"<!-- example: {marker} -->\n```python\n(.*?)```", README.read_text(), re.S)
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
