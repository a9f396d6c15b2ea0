"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9;
DESIGN §9.1): each check with its bad inputs, at the token, introspection and revocation
endpoints, with registered ``jwks`` and with a ``jwks_uri`` served by a real HTTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client as HttpClient

from clients.models import Client
from tests.conftest import ISSUER, TOKEN_PATHS, basic, jwks_verify, post_token
from tests.workload_issuer import (
    JwksServer,
    SigningKey,
    b64url,
    b64url_json,
    client_assertion_claims,
    jwk_set,
    jwks_server_fixture,  # noqa: F401  (fixture)
    new_key,
)
from tokens import remote_keys

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_URL = f"{ISSUER}/oauth/token"
ALGORITHMS = ["ES256", "ES384", "PS256", "RS256", "EdDSA"]


@pytest.fixture
def key() -> SigningKey:
    return new_key("ES256", kid="k1")


@pytest.fixture
def key_client(make_client: Callable[..., Any], key: SigningKey) -> Client:
    client, secret = make_client(
        client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(key),
        allowed_scopes=["read"],
    )
    assert secret is None
    return client


def assertion(key: SigningKey, client_id: str = "signer", *, audience: Any = ISSUER, **kwargs: Any) -> str:
    header_overrides = kwargs.pop("header_overrides", None)
    alg = kwargs.pop("alg", None)
    return key.mint(client_assertion_claims(client_id, audience=audience, **kwargs), alg=alg,
                    header_overrides=header_overrides)


def token_request(http: HttpClient, token: str, *, path: str = "/oauth/token", **params: Any) -> Any:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": token, **params}
    return post_token(http, {k: v for k, v in data.items() if v is not None}, path=path,
                      authorization=params.pop("authorization", None))


def assert_invalid_client(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}


def refusal_reason(caplog: pytest.LogCaptureFixture) -> str:
    reasons = [r.reason for r in caplog.records if r.name == "authserver.client_auth" and hasattr(r, "reason")]
    assert reasons, "no client authentication failure logged"
    return reasons[-1]


# --- success -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_each_algorithm_gets_a_token_whose_subject_is_the_client(make_client, http, alg) -> None:
    signing = new_key(alg)
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(signing))
    response = token_request(http, assertion(signing))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    claims = jwks_verify(http, body["access_token"])
    assert (claims["sub"], claims["client_id"]) == ("signer", "signer")


def test_rfc_9864_ed25519_is_eddsa(make_client, http) -> None:
    signing = new_key("EdDSA", kid="ed")
    registered = {"keys": [{**signing.public_jwk(), "alg": "Ed25519"}]}
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=registered,
                token_endpoint_auth_signing_alg="EdDSA")
    token = signing.mint(client_assertion_claims("signer", audience=ISSUER), alg="EdDSA",
                         header_overrides={"alg": "Ed25519"})
    assert token_request(http, token).status_code == 200


@pytest.mark.parametrize(
    "audience",
    [ISSUER, TOKEN_URL, [TOKEN_URL], ["https://other.example", ISSUER], f"{ISSUER}/oauth2/token/",
     f"{ISSUER}/openidconnect/token"],
    ids=["issuer", "token-endpoint", "array", "array-member", "alias", "oidc-alias"],
)
def test_audience_may_be_the_issuer_or_the_token_endpoint(key_client, key, http, audience) -> None:
    assert token_request(http, assertion(key, audience=audience)).status_code == 200


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_every_token_path_accepts_an_assertion_naming_it(key_client, key, http, path) -> None:
    assert token_request(http, assertion(key, audience=f"{ISSUER}{path}"), path=path).status_code == 200


def test_client_id_may_be_sent_and_must_equal_sub(key_client, key, http, caplog) -> None:
    assert token_request(http, assertion(key), client_id="signer").status_code == 200
    assert_invalid_client(token_request(http, assertion(key, sub="someone-else"), client_id="signer"))
    assert refusal_reason(caplog) == "client_id differs from the assertion's sub"
    # A client_id other than the assertion's iss makes it a workload's token for that client (§9.2).
    assert_invalid_client(token_request(http, assertion(key), client_id="someone-else"))
    assert refusal_reason(caplog) == "unknown client"


def test_without_kid_each_fitting_key_is_tried(make_client, http) -> None:
    rsa, ec = new_key("RS256", kid="r"), new_key("ES256", kid="e")
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(rsa, ec))
    for signing in (rsa, ec):
        response = token_request(http, assertion(signing, header_overrides={"kid": None}))
        assert response.status_code == 200, response.content


def test_a_key_only_client_has_no_secret_in_the_api(make_client, http) -> None:
    ops, ops_secret = make_client(client_id="ops", allowed_scopes=["clients:write"])
    bearer = post_token(http, {"grant_type": "client_credentials"}, authorization=basic("ops", ops_secret))
    signing = new_key("ES256")
    response = http.post(
        "/client", {"client_id": "keyed", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwk_set(signing)},
        content_type="application/json", headers={"Authorization": f"Bearer {bearer.json()['access_token']}"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "client_secret" not in body and body["secrets"] == []
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["jwks"] == jwk_set(signing)
    assert token_request(http, assertion(signing, "keyed")).status_code == 200


# --- the request -------------------------------------------------------------------------------


def test_an_assertion_with_basic_credentials_is_invalid_request(key_client, key, make_client, http) -> None:
    _, secret = make_client(client_id="other")
    response = token_request(http, assertion(key), authorization=basic("other", secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_assertion_with_a_client_secret_is_invalid_request(key_client, key, http) -> None:
    response = token_request(http, assertion(key), client_secret="ascs_x")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("missing", ["client_assertion", "client_assertion_type"])
def test_half_an_assertion_is_invalid_request(key_client, key, http, missing) -> None:
    response = token_request(http, assertion(key), **{missing: None})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_another_assertion_type_is_invalid_client(key_client, key, http) -> None:
    assert_invalid_client(token_request(http, assertion(key), client_assertion_type="urn:example:other"))


@pytest.mark.parametrize(
    "garbage",
    ["x", "a.b", "a.b.c", "....", "e30.e30.", "W10.e30.c2ln", "e30.W10.c2ln", "%%%.%%%.%%%", "eyJ" * 4000,
     b64url_json({"alg": "ES256"}) + "." + b64url(b"\xff\xfe") + ".c2ln"],
)
def test_malformed_assertions_are_invalid_client_never_500(key_client, http, garbage) -> None:
    assert_invalid_client(token_request(http, garbage))


# --- the checks --------------------------------------------------------------------------------


def test_alg_none_is_refused(key_client, key, http, caplog) -> None:
    unsigned = key.mint(client_assertion_claims("signer", audience=ISSUER), header_overrides={"alg": "none"},
                        signature=b"")
    assert_invalid_client(token_request(http, unsigned))
    assert refusal_reason(caplog) == "assertion: alg 'none' not allowed"


def test_hmac_with_the_public_key_as_secret_is_refused(key_client, key, http, caplog) -> None:
    import hashlib
    import hmac

    header = b64url_json({"alg": "HS256", "kid": "k1"})
    body = b64url_json(client_assertion_claims("signer", audience=ISSUER))
    secret = json.dumps(key.public_jwk()).encode()
    forged = f"{header}.{body}." + b64url(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
    assert_invalid_client(token_request(http, forged))
    assert refusal_reason(caplog) == "assertion: alg 'HS256' not allowed"


def test_alg_must_fit_the_key(key_client, key, http, caplog) -> None:
    other = new_key("RS256", kid="k1")  # same kid, signs RS256: the registered EC key cannot verify it
    assert_invalid_client(token_request(http, assertion(other)))
    assert refusal_reason(caplog).startswith("assertion: no key fits")


def test_the_clients_signing_alg_is_enforced(make_client, http, caplog) -> None:
    rsa = new_key("RS256", kid="r")
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(rsa, alg=False),
                token_endpoint_auth_signing_alg="PS256")
    assert_invalid_client(token_request(http, assertion(rsa)))
    assert refusal_reason(caplog) == "assertion: alg 'RS256' not allowed"
    assert token_request(http, assertion(rsa, alg="PS256", header_overrides={"alg": "PS256"})).status_code == 200


def test_an_unknown_kid_and_an_unregistered_key_are_refused(key_client, key, http, caplog) -> None:
    assert_invalid_client(token_request(http, assertion(key, header_overrides={"kid": "nope"})))
    assert refusal_reason(caplog) == "assertion: no key fits (kid 'nope', alg ES256)"
    stranger = new_key("ES256", kid="k1")
    assert_invalid_client(token_request(http, assertion(stranger)))
    assert refusal_reason(caplog) == "assertion: bad signature"


def test_a_tampered_payload_is_refused(key_client, key, http) -> None:
    header, _, signature = assertion(key).split(".")
    tampered = b64url_json(client_assertion_claims("signer", audience=ISSUER))
    assert_invalid_client(token_request(http, f"{header}.{tampered}.{signature}"))


def test_another_clients_key_never_proves_this_client(make_client, http, caplog) -> None:
    mine, theirs = new_key("ES256", kid="same"), new_key("ES256", kid="same")
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(mine))
    make_client(client_id="other", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(theirs))
    assert_invalid_client(token_request(http, assertion(theirs, "signer")))
    assert refusal_reason(caplog) == "assertion: bad signature"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "other"}, "iss and sub must both be the client id"),
        ({"iss": None}, "iss and sub must both be the client id"),
        ({"sub": "other", "iss": "signer"}, "unknown client"),
    ],
)
def test_iss_and_sub_must_be_the_client(key_client, key, http, caplog, claims, reason) -> None:
    assert_invalid_client(token_request(http, assertion(key, **claims)))
    assert refusal_reason(caplog).removeprefix("assertion: ") == reason


@pytest.mark.parametrize(
    "audience",
    ["https://other.example", f"{ISSUER}/", f"{ISSUER}/oauth/introspect", f"{ISSUER}/admin/", "http://testserver.evil",
     [], ["https://other.example"], [1], None, {"aud": ISSUER}],
    ids=["other", "trailing-slash", "another-endpoint", "admin", "lookalike", "empty-array", "other-array",
         "number", "absent", "object"],
)
def test_a_wrong_audience_is_refused(key_client, key, http, caplog, audience) -> None:
    assert_invalid_client(token_request(http, assertion(key, audience=audience)))
    assert refusal_reason(caplog) == "assertion: aud names neither this issuer nor this endpoint"


@pytest.mark.parametrize(
    ("audience", "accepted"),
    [(ISSUER, True), ([ISSUER], True), (TOKEN_URL, False), ([ISSUER, TOKEN_URL], False)],
    ids=["string", "one-member-array", "token-endpoint", "two-members"],
)
def test_audience_issuer_alone(key_client, key, http, settings, audience, accepted) -> None:
    settings.CLIENT_ASSERTION_AUDIENCE = "issuer"
    response = token_request(http, assertion(key, audience=audience))
    assert response.status_code == (200 if accepted else 401)


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"exp": -31}, False), ({"exp": -10}, True),  # 30 s of leeway
        # At most 1 h (inclusive) + leeway; each case a few seconds clear of the edge, since the
        # server's clock has moved on by the time it checks.
        ({"exp": 3600}, True), ({"exp": 3625}, True), ({"exp": 3640}, False),
        ({"iat": 60}, False), ({"iat": 20}, True), ({"nbf": 60}, False), ({"nbf": 20}, True),
    ],
    ids=["expired", "just-expired", "1h", "1h-leeway", "too-long", "iat-future", "iat-skew", "nbf-future", "nbf-skew"],
)
def test_time_checks_with_leeway(key_client, key, http, claims, accepted) -> None:
    now = int(time.time())
    values = {"iat": now, "exp": now + 60}
    values.update({name: now + offset for name, offset in claims.items()})
    token = key.mint(client_assertion_claims("signer", audience=ISSUER, **values))
    assert token_request(http, token).status_code == (200 if accepted else 401)


def test_max_lifetime_is_configurable(key_client, key, http, settings) -> None:
    settings.CLIENT_ASSERTION_MAX_LIFETIME = 300
    assert token_request(http, assertion(key, lifetime=400)).status_code == 401
    assert token_request(http, assertion(key, lifetime=300)).status_code == 200


@pytest.mark.parametrize(
    ("claims", "reason"),
    [({"exp": None}, "no exp"), ({"exp": "tomorrow"}, "exp is not a number"), ({"exp": True}, "exp is not a number"),
     ({"jti": None}, "no jti"), ({"jti": ""}, "no jti"), ({"jti": 7}, "no jti"), ({"jti": "j" * 257}, "no jti"),
     ({"iat": "now"}, "iat is not a number")],
)
def test_required_claims(key_client, key, http, caplog, claims, reason) -> None:
    values = {**client_assertion_claims("signer", audience=ISSUER), **claims}
    token = key.mint({name: value for name, value in values.items() if value is not None})
    assert_invalid_client(token_request(http, token))
    assert refusal_reason(caplog) == f"assertion: {reason}"


def test_an_assertion_is_used_once(key_client, key, http, caplog) -> None:
    token = assertion(key)
    assert token_request(http, token).status_code == 200
    assert_invalid_client(token_request(http, token))
    assert refusal_reason(caplog) == "assertion: assertion replayed (jti seen before)"
    # A new assertion works; the same jti from another client is that client's own.
    assert token_request(http, assertion(key)).status_code == 200


def test_a_jti_is_per_client(make_client, http) -> None:
    first, second = new_key("ES256"), new_key("ES256")
    make_client(client_id="one", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(first))
    make_client(client_id="two", token_endpoint_auth_method="private_key_jwt", jwks=jwk_set(second))
    assert token_request(http, assertion(first, "one", jti="shared")).status_code == 200
    assert token_request(http, assertion(second, "two", jti="shared")).status_code == 200


def test_a_refused_assertion_does_not_spend_its_jti(key_client, key, http) -> None:
    assert token_request(http, assertion(key, jti="j1", audience="https://other.example")).status_code == 401
    assert token_request(http, assertion(key, jti="j1")).status_code == 200


# --- which clients may use it ------------------------------------------------------------------


def test_a_secret_client_with_keys_cannot_use_an_assertion(make_client, key, http, caplog) -> None:
    _, secret = make_client(client_id="signer", jwks=jwk_set(key))
    assert_invalid_client(token_request(http, assertion(key)))
    assert refusal_reason(caplog) == "auth method private_key_jwt not allowed"
    assert post_token(http, {"grant_type": "client_credentials"}, authorization=basic("signer", secret)).status_code \
        == 200


def test_a_key_client_cannot_use_a_secret(key_client, http, caplog) -> None:
    from clients.services import secret_add

    issued = secret_add(client=key_client)  # an operator added one anyway
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic("signer", issued.secret))
    assert_invalid_client(response)
    assert refusal_reason(caplog) == "auth method client_secret_basic not allowed"


def test_a_disabled_client_is_refused(key_client, key, http, caplog) -> None:
    key_client.enabled = False
    key_client.save()
    assert_invalid_client(token_request(http, assertion(key)))
    assert refusal_reason(caplog) == "client disabled"


def test_unknown_client(db, key, http, caplog) -> None:
    assert_invalid_client(token_request(http, assertion(key, "nobody")))
    assert refusal_reason(caplog) == "unknown client"


def test_assertion_failures_count_towards_the_lockout(key_client, key, http, settings) -> None:
    settings.FAILED_AUTH_RATE_PER_CLIENT = "3/m"
    for _ in range(3):
        assert token_request(http, assertion(key, audience="https://other.example")).status_code == 401
    locked = token_request(http, assertion(key))
    assert locked.status_code == 429
    assert locked.json()["error"] == "temporarily_unavailable"


def test_a_rotated_key_set_applies_on_the_next_request(key_client, key, http) -> None:
    from clients.services import client_update

    new = new_key("EdDSA", kid="k2")
    client_update(client=key_client, fields={"jwks": jwk_set(new)})
    assert_invalid_client(token_request(http, assertion(key)))
    assert token_request(http, assertion(new)).status_code == 200


# --- introspection and revocation --------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/oauth/introspect", "/oauth2/revoke/"])
def test_introspection_and_revocation_accept_an_assertion(key_client, key, http, endpoint) -> None:
    token = token_request(http, assertion(key)).json()["access_token"]
    for audience in (f"{ISSUER}{endpoint}", ISSUER, TOKEN_URL):
        data = {"token": token, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(key, audience=audience)}
        response = http.post(endpoint, urlencode(data), content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200, (audience, response.content)
    data = {"token": token, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, audience=f"{ISSUER}/oauth/other")}
    assert_invalid_client(http.post(endpoint, urlencode(data), content_type="application/x-www-form-urlencoded"))


# --- registration ------------------------------------------------------------------------------


def _api(make_client, http) -> dict[str, str]:
    _, secret = make_client(client_id="ops", allowed_scopes=["clients:write", "clients:read"])
    token = post_token(http, {"grant_type": "client_credentials"}, authorization=basic("ops", secret))
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"jwks": {"keys": [new_key("ES256").private_jwk()]}}, "jwks", "private or symmetric key"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks", "private or symmetric key"),
        ({"jwks": {"keys": []}}, "jwks", "holds no key"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}}, "jwks", "not a valid EC"),
        ({"jwks": {"keys": "x"}}, "jwks", "JWK Set is a JSON object"),
        ({"jwks": ["x"]}, "jwks", "JWK Set is a JSON object"),
        ({"jwks": {"keys": [new_key("ES256", kid="a").public_jwk(), new_key("ES256", kid="a").public_jwk()]}},
         "jwks", "share a kid"),
        ({"jwks": {"keys": [{**new_key("ES256").public_jwk(), "alg": "RS256"}]}}, "jwks", "alg must be"),
        ({"jwks": {"keys": [{**new_key("ES256").public_jwk(), "use": "enc"}]}}, "jwks", "use must be sig"),
        ({"jwks_uri": "http://keys.example.com/jwks"}, "jwks_uri", "must be https"),
        ({"jwks_uri": "ftp://keys.example.com/jwks"}, "jwks_uri", "must be an https URL"),
        ({"jwks_uri": "https://user:pw@keys.example.com/jwks"}, "jwks_uri", "no credentials"),
        ({"jwks": jwk_set(new_key("ES256")), "jwks_uri": "https://keys.example.com/jwks"}, "jwks_uri", "not both"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks", "needs jwks, jwks_uri or federated identities"),
        ({"token_endpoint_auth_signing_alg": "HS256"}, "token_endpoint_auth_signing_alg", "not a valid choice"),
    ],
)
def test_registration_refuses_bad_keys(make_client, http, body, field, message) -> None:
    response = http.post("/client", body, content_type="application/json", headers=_api(make_client, http))
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors and message in " ".join(errors[field]), errors
    assert Client.objects.filter(client_id="ops").count() == 1 and Client.objects.count() == 1


def test_registration_refuses_a_small_rsa_key(make_client, http) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    small = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())
    response = http.post("/client", {"jwks": {"keys": [small.as_dict(private=False)]}},
                         content_type="application/json", headers=_api(make_client, http))
    assert response.status_code == 400
    assert "at least 2048 bits" in response.json()["jwks"][0]


def test_jwks_uri_on_loopback_may_be_plain_http(make_client, http) -> None:
    response = http.post("/client", {"jwks_uri": "http://127.0.0.1:9/jwks", "token_endpoint_auth_method":
                         "private_key_jwt"}, content_type="application/json", headers=_api(make_client, http))
    assert response.status_code == 201, response.content
    assert "client_secret" not in response.json()


def test_metadata_lists_the_method_and_its_algorithms(http) -> None:
    body = http.get("/.well-known/oauth-authorization-server").json()
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert "private_key_jwt" in body[f"{endpoint}_auth_methods_supported"]
        assert body[f"{endpoint}_auth_signing_alg_values_supported"] == ALGORITHMS


# --- jwks_uri ----------------------------------------------------------------------------------


@pytest.fixture
def uri_client(make_client, jwks_server: JwksServer) -> Client:
    client, _ = make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt",
                            jwks_uri=jwks_server.jwks_uri)
    return client


def uri_assertion(server: JwksServer, **kwargs: Any) -> str:
    return server.client_assertion("signer", audience=ISSUER, **kwargs)


def test_jwks_uri_is_fetched_once_and_cached(uri_client, jwks_server, http) -> None:
    for _ in range(3):
        assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    assert jwks_server.hits() == 1


def test_an_unknown_kid_refetches_at_once_then_at_most_every_30_s(
    uri_client, jwks_server, http, monkeypatch, settings
) -> None:
    settings.FAILED_AUTH_RATE_PER_CLIENT = settings.FAILED_AUTH_RATE_PER_IP = "off"
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    rotated = jwks_server.rotate("ES256", kid="next")
    assert token_request(http, uri_assertion(jwks_server, kid=rotated.kid)).status_code == 200
    assert jwks_server.hits() == 2
    # A flood of made-up kids within 30 s of that refetch: no fetch at all.
    for index in range(20):
        stranger = new_key("ES256", kid=f"made-up-{index}")
        assert token_request(http, uri_assertion(jwks_server, key=stranger)).status_code == 401
    assert jwks_server.hits() == 2
    # 30 s on, one unknown kid refetches once more; the next ones again wait.
    clock = time.monotonic() + remote_keys.UNKNOWN_KID_REFETCH_SECONDS
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: clock)
    for index in range(5):
        stranger = new_key("ES256", kid=f"later-{index}")
        assert token_request(http, uri_assertion(jwks_server, key=stranger)).status_code == 401
    assert jwks_server.hits() == 3


def test_cache_control_sets_how_long_keys_are_kept(uri_client, jwks_server, http, monkeypatch) -> None:
    jwks_server.cache_control = "public, max-age=120"
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    start = time.monotonic()
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start + 100)
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    assert jwks_server.hits() == 1
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start + 130)
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    assert jwks_server.hits() == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, 300), ("max-age=10", 60), ("max-age=999999", 86400), ("no-store", 60), ("public, max-age=600", 600),
     ('max-age="90"', 90), ("max-age=abc", 300)],
)
def test_cache_lifetime_bounds(header, seconds) -> None:
    assert remote_keys.cache_seconds(header) == seconds


def test_while_jwks_uri_is_down_cached_keys_keep_working(uri_client, jwks_server, http, monkeypatch) -> None:
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    start = time.monotonic()
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start + 400)  # the cache has gone stale
    with jwks_server.down():
        assert token_request(http, uri_assertion(jwks_server)).status_code == 200


def test_jwks_uri_down_without_cached_keys_is_503(uri_client, jwks_server, http) -> None:
    with jwks_server.down():
        response = token_request(http, uri_assertion(jwks_server))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("misbehaviour", ["redirect", "oversize", "oversize-unannounced", "slow", "fail",
                                          "private"])
def test_a_misbehaving_jwks_uri_gives_no_keys(uri_client, jwks_server, http, misbehaviour) -> None:
    if misbehaviour == "redirect":
        jwks_server.redirect()
    elif misbehaviour.startswith("oversize"):
        jwks_server.oversize(content_length=misbehaviour == "oversize")
    elif misbehaviour == "slow":
        jwks_server.slow(3.0)
    elif misbehaviour == "fail":
        jwks_server.fail(500)
    else:
        jwks_server.leak_private_keys = True
    started = time.monotonic()
    response = token_request(http, uri_assertion(jwks_server))
    assert time.monotonic() - started < 2 + 1.5  # the 2 s bound, with room for a loaded machine
    assert response.status_code == 503, response.content
    if misbehaviour == "redirect":
        assert jwks_server.hits() == 1  # the redirect was not followed


@pytest.fixture
def dripping_url():
    """A server that answers one byte every 0.3 s, forever (until the test ends)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    if stop.wait(0.3):
                        break
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_dripping_jwks_uri_is_given_up_on_after_2_s(make_client, http, dripping_url) -> None:
    """requests' timeout bounds each read; the fetch as a whole must stop at 2 s too."""
    make_client(client_id="signer", token_endpoint_auth_method="private_key_jwt", jwks_uri=dripping_url)
    started = time.monotonic()
    response = token_request(http, assertion(new_key("ES256")))
    assert time.monotonic() - started < 2 + 1.0
    assert response.status_code == 503


def test_withdrawn_keys_are_dropped_and_stale_ones_expire(uri_client, jwks_server, http, monkeypatch) -> None:
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    start = time.monotonic()
    # Unreachable for more than a day: the cached keys are no longer trusted.
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start + remote_keys.MAX_STALE_SECONDS + 600)
    with jwks_server.down():
        assert token_request(http, uri_assertion(jwks_server)).status_code == 503
    remote_keys.reset()
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start)
    assert token_request(http, uri_assertion(jwks_server)).status_code == 200
    # A 404 withdraws them at once.
    monkeypatch.setattr(remote_keys.time, "monotonic", lambda: start + 400)
    jwks_server.fail(404)
    assert token_request(http, uri_assertion(jwks_server)).status_code == 503


def test_the_admin_thumbprint_is_rfc_7638(db) -> None:
    """Over the required members alone: a kid, alg or use in the registered JWK changes nothing."""
    from clients.jwks import describe
    from tests.test_keys import rfc7638_thumbprint

    signing = new_key("RS256", kid="named")
    ((kid, kind, thumbprint),) = describe(jwk_set(signing))
    assert (kid, kind, thumbprint) == ("named", "RSA 2048", rfc7638_thumbprint(signing.public_jwk()))
