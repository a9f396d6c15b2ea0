"""DPoP at the token endpoint (RFC 9449 §4.3, §5, §6, §8; DESIGN §9.3): each proof check with its
bad inputs, the bound token (``token_type: DPoP``, ``cnf.jkt``) and its introspection, the
server nonce, and ``dpop_bound_access_tokens``."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import ISSUER, TOKEN_PATHS, basic, jwks_verify, post_token
from tests.test_keys import rfc7638_thumbprint
from tests.workload_issuer import SigningKey, new_key
from tokens import dpop

GRANT = {"grant_type": "client_credentials"}
TOKEN_URL = f"{ISSUER}/oauth/token"


def proof(key: SigningKey, *, htu: str = TOKEN_URL, htm: str = "POST", iat: float | None = None,
          jti: str | None = None, header: dict[str, Any] | None = None, **claims: Any) -> str:
    body = {"jti": jti or str(uuid.uuid4()), "htm": htm, "htu": htu,
            "iat": int(time.time()) if iat is None else iat, **claims}
    overrides = {"typ": "dpop+jwt", "jwk": key.public_jwk(alg=False, use=None), "kid": None, **(header or {})}
    return key.mint({k: v for k, v in body.items() if v is not None}, header_overrides=overrides)


def _without_jti(key: SigningKey) -> str:
    claims = {"jti": "", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    return key.mint(claims, header_overrides={"typ": "dpop+jwt", "jwk": key.public_jwk(alg=False, use=None),
                                              "kid": None})


def jkt(key: SigningKey) -> str:
    # The proof's jwk carries a kid too, which RFC 7638 leaves out of the hash.
    return rfc7638_thumbprint(key.public_jwk(alg=False, use=None))


@pytest.fixture
def client(make_client):
    return make_client(client_id="svc", allowed_scopes=["read"])


def token(http, secret: str, dpop_header: str | None, *, path: str = "/oauth/token", **extra: Any) -> Any:
    headers = {"HTTP_DPOP": dpop_header} if dpop_header is not None else {}
    return post_token(http, GRANT, path=path, authorization=basic("svc", secret), **headers, **extra)


def assert_invalid_proof(response: Any, reason: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_dpop_proof"
    assert reason in body["error_description"]


@pytest.mark.parametrize("alg", ["ES256", "ES384", "PS256", "RS256", "EdDSA"])
def test_a_proof_binds_the_token_to_its_key(client, http, alg) -> None:
    _, secret = client
    key = new_key(alg)
    response = token(http, secret, proof(key))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "DPoP"
    claims = jwks_verify(http, body["access_token"])
    assert claims["cnf"] == {"jkt": jkt(key)}
    # Introspection says so too (RFC 9449 §6.2).
    _, other = client
    response = http.post("/oauth/introspect", urlencode({"token": body["access_token"]}),
                         content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=basic("svc", secret))
    introspected = response.json()
    assert (introspected["active"], introspected["token_type"], introspected["cnf"]) == (True, "DPoP",
                                                                                        {"jkt": jkt(key)})


def test_without_a_proof_the_token_is_a_bearer_token(client, http) -> None:
    _, secret = client
    body = token(http, secret, None).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in jwks_verify(http, body["access_token"])


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_htu_is_the_path_called(client, http, path) -> None:
    _, secret = client
    key = new_key()
    assert token(http, secret, proof(key, htu=f"{ISSUER}{path}"), path=path).status_code == 200
    other = "/oauth2/token" if path.startswith("/oauth/") else "/oauth/token"
    assert_invalid_proof(token(http, secret, proof(key, htu=f"{ISSUER}{other}"), path=path), "htu")


@pytest.mark.parametrize(
    "htu",
    ["HTTP://TESTSERVER/oauth/token", "http://testserver:80/oauth/token", "http://testserver/oauth/token?x=1",
     "http://testserver/oauth/token#frag"],
    ids=["case", "default-port", "query", "fragment"],
)
def test_htu_is_compared_after_normalisation(client, http, htu) -> None:
    _, secret = client
    assert token(http, secret, proof(new_key(), htu=htu)).status_code == 200


@pytest.mark.parametrize(
    "htu",
    ["https://testserver/oauth/token", "http://testserver:8080/oauth/token", "http://evil/oauth/token",
     "http://testserver/oauth/introspect", "/oauth/token", "http://user@testserver/oauth/token", 7],
    ids=["scheme", "port", "host", "other-endpoint", "relative", "userinfo", "number"],
)
def test_a_wrong_htu_is_refused(client, http, htu) -> None:
    _, secret = client
    assert_invalid_proof(token(http, secret, proof(new_key(), htu=htu)), "htu")


def test_htu_follows_issuer_not_the_host_header(client, http, settings) -> None:
    """Behind a proxy the Host header may be anything; htu is checked against ISSUER."""
    _, secret = client
    settings.ISSUER = "https://auth.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    key = new_key()
    assert token(http, secret, proof(key, htu="https://auth.example.com/oauth/token"),
                 HTTP_HOST="internal:8000").status_code == 200
    assert_invalid_proof(token(http, secret, proof(key, htu="http://internal:8000/oauth/token"),
                               HTTP_HOST="internal:8000"), "htu")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: proof(k, htm="GET"), "htm"),
        (lambda k: proof(k, htm=None), "htm"),
        (lambda k: proof(k, iat=time.time() - 90), "iat"),  # the window is 60 s; clear of its edge
        (lambda k: proof(k, iat=time.time() + 90), "iat"),
        (lambda k: proof(k, iat="now"), "iat"),
        (lambda k: proof(k, iat=True), "iat"),
        (_without_jti, "jti"),
        (lambda k: proof(k, header={"typ": "JWT"}), "typ"),
        (lambda k: proof(k, header={"typ": None}), "typ"),
        (lambda k: proof(k, header={"jwk": None}), "no jwk"),
        (lambda k: proof(k, header={"jwk": k.private_jwk()}), "private key"),
        (lambda k: proof(k, header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}), "private key"),
        (lambda k: proof(k, header={"jwk": new_key().public_jwk(alg=False, use=None)}), "bad signature"),
        (lambda k: proof(k, header={"alg": "none"}), "alg"),
        (lambda k: proof(k, header={"alg": "HS256"}), "alg"),
        (lambda k: proof(k, header={"alg": "RS256"}), "alg does not fit"),
        (lambda k: "not.a.jwt", "not a JWT"),
        (lambda k: "", "exactly one"),
        (lambda k: proof(k) + ", " + proof(k), "exactly one"),
    ],
    ids=["htm-get", "htm-missing", "iat-old", "iat-future", "iat-string", "iat-bool", "jti-empty", "typ-jwt",
         "typ-missing", "jwk-missing", "jwk-private", "jwk-symmetric", "jwk-other", "alg-none", "alg-hmac",
         "alg-mismatch", "garbage", "empty", "two-headers"],
)
def test_bad_proofs_are_invalid_dpop_proof(client, http, make, reason) -> None:
    _, secret = client
    assert_invalid_proof(token(http, secret, make(new_key("ES256"))), reason)


def test_a_proof_is_used_once(client, http) -> None:
    _, secret = client
    key = new_key()
    once = proof(key)
    assert token(http, secret, once).status_code == 200
    assert_invalid_proof(token(http, secret, once), "jti seen before")


def test_dpop_bound_access_tokens_requires_a_proof(make_client, http) -> None:
    _, secret = make_client(client_id="svc", dpop_bound_access_tokens=True)
    assert_invalid_proof(token(http, secret, None), "must be DPoP-bound")
    assert token(http, secret, proof(new_key())).json()["token_type"] == "DPoP"


def test_the_server_nonce(client, http, settings) -> None:
    _, secret = client
    settings.DPOP_NONCE = True
    key = new_key()
    first = token(http, secret, proof(key))
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    assert first.headers["Cache-Control"] == "no-store"
    response = token(http, secret, proof(key, nonce=nonce))
    assert response.status_code == 200, response.content
    assert response.headers["DPoP-Nonce"]
    assert token(http, secret, proof(key, nonce="made-up")).json()["error"] == "use_dpop_nonce"


def test_a_nonce_lasts_one_more_window(monkeypatch) -> None:
    now = 1_000_000.0
    nonce = dpop.current_nonce(now)
    assert dpop.nonce_is_fresh(nonce, now + dpop.NONCE_WINDOW_SECONDS)
    assert not dpop.nonce_is_fresh(nonce, now + 2 * dpop.NONCE_WINDOW_SECONDS + 1)
    assert not dpop.nonce_is_fresh(nonce.upper(), now)


def test_a_failed_client_authentication_comes_first(client, http) -> None:
    response = token(http, "ascs_wrong", proof(new_key()))
    assert response.status_code == 401


def test_metadata_lists_the_algorithms(http) -> None:
    body = json.loads(http.get("/.well-known/oauth-authorization-server").content)
    assert body["dpop_signing_alg_values_supported"] == ["ES256", "ES384", "PS256", "RS256", "EdDSA"]


def test_a_dpop_bound_token_is_refused_as_a_bearer_token(make_client, http) -> None:
    """RFC 9449 §7.2: the management API (our own bearer authentication) refuses it, with a DPoP challenge."""
    _, secret = make_client(client_id="svc", allowed_scopes=["clients:read"])
    bound = token(http, secret, proof(new_key())).json()["access_token"]
    response = http.get("/client", HTTP_AUTHORIZATION=f"Bearer {bound}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('DPoP realm="authserver", error="invalid_token", algs="')
    plain = token(http, secret, None).json()["access_token"]
    assert http.get("/client", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200


# --- our own APIs (RFC 9449 §7) ------------------------------------------------------------------


@pytest.fixture
def bound(make_client, http):
    """A DPoP-bound token with clients:read, and the key it is bound to."""
    _, secret = make_client(client_id="svc", allowed_scopes=["clients:read"])
    key = new_key("ES256")
    access = token(http, secret, proof(key)).json()["access_token"]
    return access, key


def api_get(http, access: str, dpop_proof: str | None, *, path: str = "/client", scheme: str = "DPoP") -> Any:
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {access}"}
    if dpop_proof is not None:
        headers["HTTP_DPOP"] = dpop_proof
    return http.get(path, **headers)


def resource_proof(key: SigningKey, access: str, *, htm: str = "GET", htu: str = f"{ISSUER}/client", **kw: Any) -> str:
    return proof(key, htm=htm, htu=htu, ath=kw.pop("ath", dpop.access_token_hash(access)), **kw)


def test_the_management_api_takes_a_dpop_bound_token_with_its_proof(bound, http) -> None:
    access, key = bound
    response = api_get(http, access, resource_proof(key, access))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "case",
    ["no-proof", "other-token", "other-method", "other-url", "other-key", "replayed", "no-ath", "bearer-scheme"],
)
def test_the_management_api_refuses_a_wrong_proof(bound, http, make_client, case) -> None:
    access, key = bound
    good = resource_proof(key, access)
    if case == "replayed":
        assert api_get(http, access, good).status_code == 200
    dpop_proof = {
        "no-proof": None,
        "other-token": resource_proof(key, access, ath=dpop.access_token_hash(access + "x")),
        "other-method": resource_proof(key, access, htm="POST"),
        "other-url": resource_proof(key, access, htu=f"{ISSUER}/tenant"),
        "other-key": resource_proof(new_key("ES256"), access),
        "replayed": good,
        "no-ath": resource_proof(key, access, ath=None),
        "bearer-scheme": good,
    }[case]
    response = api_get(http, access, dpop_proof, scheme="Bearer" if case == "bearer-scheme" else "DPoP")
    assert response.status_code == 401, response.content
    assert response.headers["WWW-Authenticate"].startswith('DPoP realm="authserver", error="invalid_token"')


def test_a_plain_bearer_token_is_not_a_dpop_token(make_client, http) -> None:
    _, secret = make_client(client_id="svc", allowed_scopes=["clients:read"])
    plain = token(http, secret, None).json()["access_token"]
    assert api_get(http, plain, resource_proof(new_key(), plain)).status_code == 401
