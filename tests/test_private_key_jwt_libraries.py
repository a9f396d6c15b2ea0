"""Real client libraries authenticate with ``private_key_jwt`` against a live server
(RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9; DESIGN §9.1).

Authlib's ``PrivateKeyJWT``, requests-oauth2client's ``PrivateKeyJwt``, Node's openid-client v6
(``PrivateKeyJwt``, after discovery) and a Go program that signs the assertion with go-jose v2 and
sends it through ``golang.org/x/oauth2/clientcredentials`` (``EndpointParams``, no secret) each
get a token for a client registered with a JWK Set (``jwks``) and no secret, over ES256, RS256,
PS256 and EdDSA; each token is then verified independently with PyJWT against the served JWKS.
Each library is refused with ``invalid_client`` 401, as it reports it, when it signs with a key
the client never registered, or with another key under a registered ``kid``.

The libraries differ where §9.1 allows it: ``aud`` is the token endpoint's URL (Authlib,
requests-oauth2client; go-jose as a one-member array), or the issuer (openid-client, from
discovery; requests-oauth2client's ``aud-issuer`` case), the live server's ``ISSUER`` being its
own URL here as in production; Authlib's assertion lives exactly 1 h (the inclusive maximum),
the others 1 or 5 min; Authlib sends no ``client_id``, the others do; ``authlib-no-kid`` sends no
``kid``, so the key is chosen by fit among the client's two.
"""

from __future__ import annotations

import fcntl
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
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwk as joserfc_jwk
from jwskate import Jwk
from requests_oauth2client import OAuth2Client, PrivateKeyJwt
from requests_oauth2client.exceptions import EndpointError

from tests.workload_issuer import JwksServer, SigningKey, jwk_set, jwks_server_fixture  # noqa: F401  (fixture)

AUDIENCE = "https://api.example.com"
TTL = 600
ALLOWED_SCOPES = ["read", "write"]
SCOPE = "read"

GOPATH = Path("/usr/share/gocode")
GO_LIBRARIES = {
    "golang.org/x/oauth2": "golang-golang-x-oauth2-dev",
    "gopkg.in/square/go-jose.v2": "golang-gopkg-square-go-jose.v2-dev",
}
GO_PROGRAM = r"""
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	jose "gopkg.in/square/go-jose.v2"
	"gopkg.in/square/go-jose.v2/jwt"
)

// usage: token TOKEN_URL CLIENT_ID AUDIENCE PRIVATE_JWK_FILE ALG SCOPES
func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: token TOKEN_URL CLIENT_ID AUDIENCE PRIVATE_JWK_FILE ALG SCOPES")
		os.Exit(2)
	}
	tokenURL, clientID, audience, alg := os.Args[1], os.Args[2], os.Args[3], os.Args[5]
	raw, err := ioutil.ReadFile(os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(raw); err != nil {
		fmt.Fprintln(os.Stderr, "bad JWK:", err)
		os.Exit(2)
	}
	// A JSONWebKey signer puts the key's kid in the header.
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signer:", err)
		os.Exit(2)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	now := time.Now()
	claims := jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{audience}, ID: hex.EncodeToString(id),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}
	assertion, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sign:", err)
		os.Exit(2)
	}
	// No ClientSecret: AuthStyleInParams then sends client_id alone, beside the assertion.
	config := clientcredentials.Config{
		TokenURL: tokenURL, ClientID: clientID, Scopes: strings.Fields(os.Args[6]),
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		},
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

OPENID_CLIENT = "openid-client@6"
NODE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "authserver-tests" / "openid-client-6"
NODE_PROGRAM = r"""
// usage: node token.mjs ISSUER CLIENT_ID PRIVATE_JWK_FILE ALG SCOPE
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';

const [issuer, clientId, jwkFile, alg, scope] = process.argv.slice(2);
const { kid, alg: _alg, use: _use, ...jwk } = JSON.parse(readFileSync(jwkFile, 'utf8'));
const algorithm = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  EdDSA: { name: 'Ed25519' },
}[alg];
const key = await crypto.subtle.importKey('jwk', jwk, algorithm, false, ['sign']);
// oauth4webapi names an Ed25519 signature "Ed25519" (RFC 9864); DESIGN 9.1 lists "EdDSA".
const options = alg === 'EdDSA' ? { [client.modifyAssertion]: (header) => { header.alg = 'EdDSA'; } } : undefined;
try {
  // Discovery at ISSUER; the assertion's aud is the discovered issuer. The live server is plain http.
  const config = await client.discovery(
    new URL(issuer), clientId, undefined, client.PrivateKeyJwt({ key, kid }, options),
    { execute: [client.allowInsecureRequests], timeout: 30 },
  );
  const token = await client.clientCredentialsGrant(config, scope ? { scope } : {});
  console.log(JSON.stringify({
    access_token: token.access_token, token_type: token.token_type, expires_in: token.expires_in, scope: token.scope,
  }));
} catch (error) {
  if (error instanceof client.ResponseBodyError) {
    console.error(JSON.stringify({ error: error.error, status: error.status }));
    process.exit(1);
  }
  if (error instanceof client.WWWAuthenticateChallengeError) {
    const body = await error.response.json();
    console.error(JSON.stringify({ error: body.error, status: error.status }));
    process.exit(1);
  }
  console.error(error);
  process.exit(2);
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


@dataclass(frozen=True)
class Server:
    issuer: str  # the live server's URL, and its ISSUER

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"


# (server, client_id, key it signs with, scope) -> Token, or raises Refused
Fetch = Callable[[Server, str, SigningKey, str | None], Token]


def _record_statuses(session: requests.Session) -> list[int]:
    """The HTTP status of each response (sessions are closed after use, so that the live
    server's keep-alive threads end and release their database connections)."""
    statuses: list[int] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
    return statuses


def authlib_fetch(*, kid: bool = True) -> Fetch:
    """Authlib's ``PrivateKeyJWT`` (aud: the token endpoint's URL; no ``client_id`` in the body)."""

    def fetch(server: Server, client_id: str, key: SigningKey, scope: str | None) -> Token:
        auth = PrivateKeyJWT(server.token_url, alg=key.alg, headers={"kid": key.kid} if kid else None)
        private = joserfc_jwk.import_key(key.private_jwk())
        extra = {"scope": scope} if scope is not None else {}
        with AuthlibSession(client_id, private, token_endpoint_auth_method=auth) as session:
            statuses = _record_statuses(session)
            try:
                token = session.fetch_token(server.token_url, grant_type="client_credentials", **extra)
            except OAuthError as error:
                raise Refused(error.error, statuses[-1]) from error
        return Token(token["access_token"], token["token_type"], int(token["expires_in"]), token["scope"])

    return fetch


def requests_oauth2client_fetch(*, audience_is_issuer: bool = False) -> Fetch:
    """requests-oauth2client's ``PrivateKeyJwt`` (aud: the endpoint's URL, or the issuer)."""

    def fetch(server: Server, client_id: str, key: SigningKey, scope: str | None) -> Token:
        auth = PrivateKeyJwt(
            client_id, Jwk(key.private_jwk()), alg=key.alg, aud=server.issuer if audience_is_issuer else None,
        )
        # testing=True: the live server is plain http on a custom port.
        oauth2client = OAuth2Client(token_endpoint=server.token_url, auth=auth, testing=True)
        responses: list[requests.Response] = []
        oauth2client.session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
        try:
            token = oauth2client.client_credentials(scope=scope)
        except EndpointError as error:
            raise Refused(error.error, error.response.status_code) from error
        finally:
            oauth2client.session.close()
        # BearerToken.expires_in is the time left (it counts down from expires_at): the sent value.
        expires_in = int(responses[-1].json()["expires_in"])
        assert token.expires_at is not None and token.expires_in is not None and 0 < token.expires_in <= expires_in
        return Token(token.access_token, token.token_type, expires_in, str(token.scope))

    return fetch


def node_fetch(program: Path) -> Fetch:
    def fetch(server: Server, client_id: str, key: SigningKey, scope: str | None) -> Token:
        jwk_file = program.parent / f"{key.kid}.jwk.json"
        jwk_file.write_text(json.dumps(key.private_jwk()))
        result = subprocess.run(
            ["node", str(program), server.issuer, client_id, str(jwk_file), key.alg, scope or ""],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if result.returncode == 1:
            refusal = json.loads(result.stderr)
            raise Refused(refusal["error"], refusal["status"])
        assert result.returncode == 0, result.stderr
        token = json.loads(result.stdout)
        return Token(token["access_token"], token["token_type"], int(token["expires_in"]), token["scope"])

    return fetch


def go_fetch(program: Path) -> Fetch:
    def fetch(server: Server, client_id: str, key: SigningKey, scope: str | None) -> Token:
        jwk_file = program.parent / f"{key.kid}.jwk.json"
        jwk_file.write_text(json.dumps(key.private_jwk()))
        result = subprocess.run(
            [str(program), server.token_url, client_id, server.token_url, str(jwk_file), key.alg, scope or ""],
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
def go_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go client, compiled once for the module against Debian's packaged libraries."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("the go toolchain is not installed (Debian package golang-go)")
    for library, package in GO_LIBRARIES.items():
        if not (GOPATH / "src" / library).is_dir():
            pytest.skip(f"{GOPATH / 'src' / library} is missing (Debian package {package})")
    directory = tmp_path_factory.mktemp("go-pkjwt-client")
    (directory / "main.go").write_text(GO_PROGRAM)
    env = {key: value for key, value in os.environ.items() if key != "GOFLAGS"}
    env.update(GO111MODULE="off", GOPATH=str(GOPATH), GOCACHE=str(directory / "cache"))
    build = subprocess.run(
        [go, "build", "-o", str(directory / "token"), str(directory / "main.go")],
        cwd=directory, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert build.returncode == 0, build.stderr
    return directory / "token"


@pytest.fixture(scope="session")
def openid_client_modules() -> Path:
    """openid-client v6 from npm, installed once per session into a cache folder outside the
    repository (``$XDG_CACHE_HOME/authserver-tests``); its ``node_modules``."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian packages nodejs, npm): needed for openid-client")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NODE_CACHE / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine may be installing it too
        install = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", OPENID_CLIENT],
            cwd=NODE_CACHE, capture_output=True, text=True, timeout=300, check=False,
        )
    assert install.returncode == 0, install.stdout + install.stderr
    version = json.loads((NODE_CACHE / "node_modules/openid-client/package.json").read_text())["version"]
    assert version.startswith("6."), version
    return NODE_CACHE / "node_modules"


@pytest.fixture(scope="module")
def node_program(openid_client_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("node-pkjwt-client")
    # ES modules resolve packages from the script's folder upwards (NODE_PATH is not read).
    (directory / "node_modules").symlink_to(openid_client_modules, target_is_directory=True)
    (directory / "token.mjs").write_text(NODE_PROGRAM)
    return directory / "token.mjs"


LIBRARIES: dict[str, Callable[[pytest.FixtureRequest], Fetch]] = {
    "authlib": lambda request: authlib_fetch(),
    "authlib-no-kid": lambda request: authlib_fetch(kid=False),
    "requests-oauth2client": lambda request: requests_oauth2client_fetch(),
    "requests-oauth2client-aud-issuer": lambda request: requests_oauth2client_fetch(audience_is_issuer=True),
    "openid-client": lambda request: node_fetch(request.getfixturevalue("node_program")),
    "go-jose-x-oauth2": lambda request: go_fetch(request.getfixturevalue("go_program")),
}
# (library, alg): every library over the algorithms it signs with.
CASES = [
    ("authlib", "ES256"), ("authlib", "RS256"), ("authlib", "PS256"), ("authlib", "EdDSA"),
    ("authlib-no-kid", "ES256"),
    ("requests-oauth2client", "ES256"), ("requests-oauth2client", "RS256"),
    ("requests-oauth2client", "PS256"), ("requests-oauth2client", "EdDSA"),
    ("requests-oauth2client-aud-issuer", "ES256"),
    ("openid-client", "ES256"), ("openid-client", "RS256"), ("openid-client", "PS256"), ("openid-client", "EdDSA"),
    ("go-jose-x-oauth2", "ES256"), ("go-jose-x-oauth2", "RS256"), ("go-jose-x-oauth2", "PS256"),
    ("go-jose-x-oauth2", "EdDSA"),
]
# One of each library, where only how they sign and report matters.
EACH_LIBRARY = ["authlib", "requests-oauth2client", "openid-client", "go-jose-x-oauth2"]


@pytest.fixture
def server(live_server: Any, settings: Any, transactional_db: None) -> Iterator[Server]:
    """The live server, its ``ISSUER`` its own URL (as in production), so that the issuer and
    the token endpoint URL the libraries put in ``aud`` are this server's."""
    settings.ISSUER = live_server.url
    yield Server(issuer=live_server.url)


@pytest.fixture
def register(make_client: Callable[..., Any], transactional_db: None) -> Callable[..., Any]:
    """``register(*keys)``: a ``private_key_jwt`` client holding the public ``keys`` as ``jwks``."""

    def make(*keys: SigningKey) -> Any:
        client, secret = make_client(
            token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(*keys),
            allowed_scopes=ALLOWED_SCOPES, audiences=[AUDIENCE], access_token_ttl=TTL,
        )
        assert secret is None  # DESIGN §9.1: such a client has no secret
        return client

    return make


def assert_verifiable(server: Server, token: Token, *, client_id: str, scope: str) -> None:
    """RFC 9068: verify the token offline against the served JWKS, then its claims."""
    # RFC 6749 §5.1: token_type is case-insensitive (oauth4webapi lowercases it).
    assert (token.token_type.lower(), token.expires_in, token.scope) == ("bearer", TTL, scope)
    response = requests.get(f"{server.issuer}/.well-known/jwks.json", timeout=30)
    assert response.status_code == 200
    header = jwt.get_unverified_header(token.access_token)
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(response.json())[header["kid"]]
    claims = jwt.decode(
        token.access_token, key=key, algorithms=["ES256", "RS256", "EdDSA"], issuer=server.issuer,
        audience=AUDIENCE, options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
    )
    assert set(claims) == {"iss", "sub", "client_id", "aud", "iat", "exp", "jti", "scope"}
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (client_id, client_id, AUDIENCE)
    assert claims["scope"] == scope
    assert claims["exp"] - claims["iat"] == token.expires_in


@pytest.mark.parametrize(("library", "alg"), CASES, ids=[f"{name}-{alg}" for name, alg in CASES])
def test_library_gets_a_verifiable_token(
    request: pytest.FixtureRequest, server: Server, register: Callable[..., Any], library: str, alg: str,
) -> None:
    fetch = LIBRARIES[library](request)
    key = SigningKey.generate(alg)
    # A second, unrelated key first: the library's kid (or, without one, its alg) picks the key.
    client = register(SigningKey.generate("ES256" if alg != "ES256" else "RS256"), key)
    token = fetch(server, client.client_id, key, SCOPE)
    assert_verifiable(server, token, client_id=client.client_id, scope=SCOPE)


@pytest.mark.parametrize("signer", ["unregistered-key", "other-key-under-registered-kid"])
@pytest.mark.parametrize("library", EACH_LIBRARY)
def test_key_the_client_never_registered_is_invalid_client(
    request: pytest.FixtureRequest, server: Server, register: Callable[..., Any], library: str, signer: str,
) -> None:
    fetch = LIBRARIES[library](request)
    registered = SigningKey.generate("ES256")
    client = register(registered)
    kid = registered.kid if signer == "other-key-under-registered-kid" else None
    with pytest.raises(Refused) as refused:
        fetch(server, client.client_id, SigningKey.generate("ES256", kid=kid), SCOPE)
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


@pytest.mark.parametrize("library", EACH_LIBRARY)
def test_library_with_a_jwks_uri_client_across_a_key_rotation(
    request: pytest.FixtureRequest, server: Server, make_client: Callable[..., Any], jwks_server: JwksServer,
    library: str,
) -> None:
    """DESIGN §9.1: the keys come from the client's ``jwks_uri`` (plain http on loopback), fetched
    once; when the client rotates (the new kid is unknown), the server refetches at once."""
    fetch = LIBRARIES[library](request)
    client, secret = make_client(
        token_endpoint_auth_method="private_key_jwt", jwks_uri=jwks_server.jwks_uri,
        allowed_scopes=ALLOWED_SCOPES, audiences=[AUDIENCE], access_token_ttl=TTL,
    )
    assert secret is None
    for _ in range(2):
        token = fetch(server, client.client_id, jwks_server.current, SCOPE)
        assert_verifiable(server, token, client_id=client.client_id, scope=SCOPE)
    assert jwks_server.hits() == 1
    rotated = jwks_server.rotate(keep_old=False)
    token = fetch(server, client.client_id, rotated, SCOPE)
    assert_verifiable(server, token, client_id=client.client_id, scope=SCOPE)
    assert jwks_server.hits() == 2
