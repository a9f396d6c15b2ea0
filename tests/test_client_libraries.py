"""Real OAuth client libraries against a live server (RFC 6749 §2.3.1, §4.4; RFC 9068).

requests-oauthlib, Authlib and Go's ``golang.org/x/oauth2/clientcredentials`` each
fetch a token over HTTP with every client authentication style they offer; each
token is then verified independently with PyJWT against the served JWKS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidClientError
from requests_oauthlib import OAuth2Session

from clients.secrets import generate_secret
from tests.conftest import ISSUER

BASIC = "client_secret_basic"
POST = "client_secret_post"
AUTO = "either"  # Go's AuthStyleAutoDetect: Basic first, then the body after a refusal.

AUDIENCE = "https://api.example.com"
TTL = 600
ALLOWED_SCOPES = ["read", "write"]
# RFC 6749 §2.3.1: these must be form-encoded inside Basic; some libraries do, some don't.
AWKWARD_IDS = ["team:svc@prod", "a+b%c"]

GOPATH = Path("/usr/share/gocode")
GO_LIBRARY = GOPATH / "src/golang.org/x/oauth2/clientcredentials"
GO_PROGRAM = r"""
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// usage: token TOKEN_URL CLIENT_ID SECRET AUTH_STYLE SCOPES
func main() {
	styles := map[string]oauth2.AuthStyle{
		"AuthStyleInHeader":   oauth2.AuthStyleInHeader,
		"AuthStyleInParams":   oauth2.AuthStyleInParams,
		"AuthStyleAutoDetect": oauth2.AuthStyleAutoDetect,
	}
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: token TOKEN_URL CLIENT_ID SECRET AUTH_STYLE SCOPES")
		os.Exit(2)
	}
	style, ok := styles[os.Args[4]]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown auth style", os.Args[4])
		os.Exit(2)
	}
	config := clientcredentials.Config{
		TokenURL: os.Args[1], ClientID: os.Args[2], ClientSecret: os.Args[3],
		Scopes: strings.Fields(os.Args[5]), AuthStyle: style,
	}
	token, err := config.Token(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"access_token": token.AccessToken, "token_type": token.TokenType, "expiry": token.Expiry,
		"expires_in": token.Extra("expires_in"), "scope": token.Extra("scope"),
	})
}
"""


@dataclass(frozen=True)
class Token:
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class Refused(Exception):
    """The library reported a token error response: its ``error`` code and HTTP status."""

    def __init__(self, error: str, status: int | None) -> None:
        super().__init__(error, status)
        self.error = error
        self.status = status


Fetch = Callable[[str, str, str, str | None], Token]


@dataclass(frozen=True)
class Library:
    name: str
    method: str  # BASIC, POST or AUTO: how it presents the credentials
    fetch: Fetch  # (token_url, client_id, secret, scope) -> Token, or raises Refused


def _record_statuses(session: requests.Session) -> list[int]:
    """The HTTP status of each response (the sessions are closed after use, so that the
    live server's keep-alive threads end and release their database connections)."""
    statuses: list[int] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
    return statuses


def requests_oauthlib_fetch(*, body_credentials: bool) -> Fetch:
    def fetch(token_url: str, client_id: str, secret: str, scope: str | None) -> Token:
        # The scope goes on the oauthlib client: OAuth2Session(scope=...) is not sent by fetch_token.
        extra = {"include_client_id": True} if body_credentials else {}
        with OAuth2Session(client=BackendApplicationClient(client_id=client_id, scope=scope)) as session:
            statuses = _record_statuses(session)
            try:
                token = session.fetch_token(token_url=token_url, client_id=client_id, client_secret=secret, **extra)
            except InvalidClientError as error:
                raise Refused(error.error, statuses[-1]) from error
        # oauthlib turns the granted scope into a list.
        return Token(token["access_token"], token["token_type"], int(token["expires_in"]), " ".join(token["scope"]))

    return fetch


def authlib_fetch(method: str) -> Fetch:
    def fetch(token_url: str, client_id: str, secret: str, scope: str | None) -> Token:
        extra = {"scope": scope} if scope is not None else {}
        with AuthlibSession(client_id, secret, token_endpoint_auth_method=method) as session:
            statuses = _record_statuses(session)
            try:
                token = session.fetch_token(token_url, grant_type="client_credentials", **extra)
            except OAuthError as error:
                raise Refused(error.error, statuses[-1]) from error
        return Token(token["access_token"], token["token_type"], int(token["expires_in"]), token["scope"])

    return fetch


def go_fetch(program: Path, style: str) -> Fetch:
    def fetch(token_url: str, client_id: str, secret: str, scope: str | None) -> Token:
        result = subprocess.run(
            [str(program), token_url, client_id, secret, style, scope or ""],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if result.returncode == 1:
            # x/oauth2's RetrieveError: "oauth2: cannot fetch token: 401 Unauthorized\nResponse: {...}"
            refusal = re.fullmatch(r"oauth2: cannot fetch token: (\d{3}) [^\n]*\nResponse: (.*)\n", result.stderr, re.S)
            assert refusal is not None, result.stderr
            raise Refused(json.loads(refusal[2])["error"], int(refusal[1]))
        assert result.returncode == 0, result.stderr
        token = json.loads(result.stdout)
        assert token["expiry"] and not token["expiry"].startswith("0001-"), token
        return Token(token["access_token"], token["token_type"], int(token["expires_in"]), token["scope"])

    return fetch


@pytest.fixture(scope="module")
def go_token_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go client, compiled once for the module."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("the go toolchain is not installed (Debian package golang-go)")
    if not GO_LIBRARY.is_dir():
        pytest.skip(f"{GO_LIBRARY} is missing (Debian package golang-golang-x-oauth2-dev)")
    directory = tmp_path_factory.mktemp("go-client")
    (directory / "main.go").write_text(GO_PROGRAM)
    env = {key: value for key, value in os.environ.items() if key != "GOFLAGS"}
    env.update(GO111MODULE="off", GOPATH=str(GOPATH), GOCACHE=str(directory / "cache"))
    build = subprocess.run(
        [go, "build", "-o", str(directory / "token"), str(directory / "main.go")],
        cwd=directory, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert build.returncode == 0, build.stderr
    return directory / "token"


LIBRARIES: dict[str, tuple[str, Callable[[pytest.FixtureRequest], Fetch]]] = {
    "requests-oauthlib-basic": (BASIC, lambda request: requests_oauthlib_fetch(body_credentials=False)),
    "requests-oauthlib-include_client_id": (POST, lambda request: requests_oauthlib_fetch(body_credentials=True)),
    "authlib-client_secret_basic": (BASIC, lambda request: authlib_fetch(BASIC)),
    "authlib-client_secret_post": (POST, lambda request: authlib_fetch(POST)),
    "go-AuthStyleInHeader": (
        BASIC, lambda request: go_fetch(request.getfixturevalue("go_token_program"), "AuthStyleInHeader"),
    ),
    "go-AuthStyleInParams": (
        POST, lambda request: go_fetch(request.getfixturevalue("go_token_program"), "AuthStyleInParams"),
    ),
    "go-AuthStyleAutoDetect": (
        AUTO, lambda request: go_fetch(request.getfixturevalue("go_token_program"), "AuthStyleAutoDetect"),
    ),
}


@pytest.fixture(params=list(LIBRARIES))
def library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Library]:
    # live_server speaks plain HTTP, which oauthlib refuses by default.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    method, make_fetch = LIBRARIES[request.param]
    yield Library(name=request.param, method=method, fetch=make_fetch(request))


@pytest.fixture
def token_url(live_server: Any, transactional_db: None) -> str:
    return f"{live_server.url}/oauth/token"


@pytest.fixture
def registered(make_client: Callable[..., Any], transactional_db: None) -> Callable[..., Any]:
    """``make_client`` with the scopes, audience and lifetime every test here expects."""

    def make(**kwargs: Any) -> Any:
        return make_client(allowed_scopes=ALLOWED_SCOPES, audiences=[AUDIENCE], access_token_ttl=TTL, **kwargs)

    return make


def assert_verifiable(live_server: Any, token: Token, *, client_id: str, scope: str) -> None:
    """RFC 9068: verify the token offline against the served JWKS, then its claims."""
    assert (token.token_type, token.expires_in, token.scope) == ("Bearer", TTL, scope)
    response = requests.get(f"{live_server.url}/.well-known/jwks.json", timeout=30)
    assert response.status_code == 200
    header = jwt.get_unverified_header(token.access_token)
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(response.json())[header["kid"]]
    claims = jwt.decode(
        token.access_token, key=key, algorithms=["ES256", "RS256", "EdDSA"], issuer=ISSUER, audience=AUDIENCE,
        options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
    )
    assert set(claims) == {"iss", "sub", "client_id", "aud", "iat", "exp", "jti", "scope"}
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (client_id, client_id, AUDIENCE)
    assert claims["scope"] == scope
    assert claims["exp"] - claims["iat"] == token.expires_in
    assert isinstance(claims["jti"], str) and claims["jti"]


@pytest.mark.parametrize("scope", [None, "read"], ids=["default-scope", "requested-scope"])
@pytest.mark.parametrize("client_id", [None, *AWKWARD_IDS], ids=["generated-id", *AWKWARD_IDS])
def test_library_gets_a_verifiable_token(
    library: Library, live_server: Any, token_url: str, registered: Callable[..., Any],
    client_id: str | None, scope: str | None,
) -> None:
    client, secret = registered(**({"client_id": client_id} if client_id else {}))
    token = library.fetch(token_url, client.client_id, secret, scope)
    # RFC 6749 §3.3: no scope requested grants the client's default scopes.
    assert_verifiable(live_server, token, client_id=client.client_id, scope=scope or "read write")


@pytest.mark.parametrize("client_id", [None, *AWKWARD_IDS], ids=["generated-id", *AWKWARD_IDS])
def test_wrong_secret_is_invalid_client(
    library: Library, token_url: str, registered: Callable[..., Any], client_id: str | None
) -> None:
    client, _ = registered(**({"client_id": client_id} if client_id else {}))
    with pytest.raises(Refused) as refused:
        library.fetch(token_url, client.client_id, generate_secret(), None)
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


@pytest.mark.parametrize("restricted_to", [BASIC, POST])
def test_token_endpoint_auth_method_restriction(
    library: Library, live_server: Any, token_url: str, registered: Callable[..., Any], restricted_to: str
) -> None:
    """RFC 7591 §2: a client registered for one method is refused the other one."""
    client, secret = registered(token_endpoint_auth_method=restricted_to)
    if library.method in (restricted_to, AUTO):
        token = library.fetch(token_url, client.client_id, secret, None)
        assert_verifiable(live_server, token, client_id=client.client_id, scope="read write")
    else:
        with pytest.raises(Refused) as refused:
            library.fetch(token_url, client.client_id, secret, None)
        assert (refused.value.error, refused.value.status) == ("invalid_client", 401)
