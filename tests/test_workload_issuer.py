"""The test issuer itself (``tests/workload_issuer.py``): what it serves, signs and counts."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
import requests

from tests.workload_issuer import (  # noqa: F401  (fixtures)
    ALGORITHMS,
    MAX_JWKS_BYTES,
    JwksServer,
    SigningKey,
    WorkloadIssuer,
    jwk_set,
    jwks_server_fixture,
    make_workload_issuer_fixture,
    workload_issuer_fixture,
)

AUDIENCE = "http://testserver"


def get(url: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    return requests.get(url, **kwargs)


def verify(token: str, jwks: dict[str, Any], **options: Any) -> dict[str, Any]:
    """PyJWT checks the signature against the served set, by ``kid``."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    checks: Any = {"verify_aud": False, **options}
    return jwt.decode(token, key=key, algorithms=[header["alg"]], options=checks)


def test_discovery_names_the_issuer_and_its_jwks(make_workload_issuer: Any) -> None:
    issuer = make_workload_issuer(keys=["RS256"], issuer_path="/id/CLUSTER1")
    assert issuer.issuer == f"{issuer.url}/id/CLUSTER1"
    response = get(f"{issuer.issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}/openid/v1/jwks",
        "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    jwks = get(issuer.jwks_uri)
    assert "Cache-Control" not in jwks.headers
    assert jwks.json() == {"keys": [issuer.current.public_jwk()]}
    assert set(jwks.json()["keys"][0]) == {"kty", "n", "e", "kid", "alg", "use"}
    assert get(f"{issuer.url}/elsewhere").status_code == 404


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_each_algorithm_verifies_against_the_served_set(make_workload_issuer: Any, alg: str) -> None:
    issuer = make_workload_issuer(keys=[alg])
    token = issuer.mint({"sub": "x"})
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": issuer.current.kid}
    assert verify(token, get(issuer.jwks_uri).json()) == {"sub": "x"}
    assert issuer.current.kid == issuer.current._joserfc().thumbprint()  # RFC 7638


def test_several_keys_and_rotation(workload_issuer: WorkloadIssuer) -> None:
    first = workload_issuer.current
    ed = workload_issuer.add_key("EdDSA", kid="ed-1")
    assert workload_issuer.current == ed
    assert [k["kid"] for k in get(workload_issuer.jwks_uri).json()["keys"]] == [first.kid, "ed-1"]

    kept = workload_issuer.rotate("RS256", kid="rsa-2")
    old_token = workload_issuer.mint({"n": 1}, kid=first.kid)
    served = get(workload_issuer.jwks_uri).json()
    assert [k["kid"] for k in served["keys"]] == [first.kid, "ed-1", "rsa-2"]
    assert verify(old_token, served) == {"n": 1}
    assert jwt.get_unverified_header(workload_issuer.mint({}))["kid"] == kept.kid

    dropped = workload_issuer.rotate(keep_old=False)
    assert dropped.alg == "RS256" and dropped.kid != "rsa-2"
    assert get(workload_issuer.jwks_uri).json() == {"keys": [dropped.public_jwk()]}
    with pytest.raises(KeyError):
        verify(old_token, get(workload_issuer.jwks_uri).json())

    workload_issuer.remove_key(dropped.kid)
    assert get(workload_issuer.jwks_uri).json() == {"keys": []}


def test_down_and_back_on_the_same_port(workload_issuer: WorkloadIssuer) -> None:
    url, port = workload_issuer.jwks_uri, workload_issuer.port
    assert get(url).status_code == 200
    with workload_issuer.down():
        assert not workload_issuer.running
        with pytest.raises(requests.ConnectionError):
            get(url)
    assert workload_issuer.running and workload_issuer.port == port
    assert get(url).json() == workload_issuer.jwks()
    assert workload_issuer.hits() == 2  # the refused request never arrived


def test_counts_requests_per_path(workload_issuer: WorkloadIssuer) -> None:
    for _ in range(3):
        get(workload_issuer.jwks_uri, params={"x": "1"})  # counted without the query
    get(workload_issuer.discovery_url)
    assert workload_issuer.hits() == 3
    assert workload_issuer.hits(workload_issuer.discovery_path) == 1
    assert workload_issuer.hits_by_path == {workload_issuer.jwks_path: 3, "/.well-known/openid-configuration": 1}
    assert [seen.path for seen in workload_issuer.seen] == [workload_issuer.jwks_path] * 3 + [
        "/.well-known/openid-configuration"
    ]
    assert workload_issuer.wait_for_hits(3) == 3
    workload_issuer.reset_hits()
    assert workload_issuer.hits_by_path == {} and workload_issuer.seen == []


def test_cache_control(workload_issuer: WorkloadIssuer) -> None:
    workload_issuer.cache_control = "public, max-age=600"
    assert get(workload_issuer.jwks_uri).headers["Cache-Control"] == "public, max-age=600"


def test_redirect_to_a_copy_that_counts(workload_issuer: WorkloadIssuer) -> None:
    target = workload_issuer.redirect()
    response = get(workload_issuer.jwks_uri, allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (302, target)
    assert workload_issuer.hits(target.removeprefix(workload_issuer.url)) == 0
    followed = get(workload_issuer.jwks_uri)
    assert followed.json() == workload_issuer.jwks()
    assert workload_issuer.hits(target.removeprefix(workload_issuer.url)) == 1
    workload_issuer.behave_normally()
    assert get(workload_issuer.jwks_uri, allow_redirects=False).status_code == 200


@pytest.mark.parametrize("content_length", [True, False], ids=["announced", "unannounced"])
def test_oversized_jwks_is_still_a_valid_document(workload_issuer: WorkloadIssuer, content_length: bool) -> None:
    workload_issuer.oversize(content_length=content_length)
    response = get(workload_issuer.jwks_uri)
    assert len(response.content) == MAX_JWKS_BYTES + 1
    assert ("Content-Length" in response.headers) is content_length
    assert json.loads(response.content) == workload_issuer.jwks()


def test_slow_answer_and_stop_while_answering(workload_issuer: WorkloadIssuer) -> None:
    workload_issuer.slow(10)
    with pytest.raises(requests.Timeout):
        get(workload_issuer.jwks_uri, timeout=0.5)
    assert get(workload_issuer.discovery_url).status_code == 200  # only the JWKS is slow
    workload_issuer.stop()  # wakes the slow handler, which then closes without answering
    workload_issuer.behave_normally()
    workload_issuer.start()
    assert get(workload_issuer.jwks_uri).status_code == 200


def test_failure_status(workload_issuer: WorkloadIssuer) -> None:
    workload_issuer.fail(503)
    assert get(workload_issuer.jwks_uri).status_code == 503


def test_private_keys_in_the_set(workload_issuer: WorkloadIssuer) -> None:
    workload_issuer.add_key("RS256")
    workload_issuer.leak_private_keys = True
    keys = get(workload_issuer.jwks_uri).json()["keys"]
    assert [("d" in key) for key in keys] == [True, True]
    assert {"p", "q", "dp", "dq", "qi"} <= set(keys[1])


def test_discovery_naming_another_issuer(workload_issuer: WorkloadIssuer) -> None:
    workload_issuer.discovery_issuer = "https://evil.example"
    assert get(workload_issuer.discovery_url).json()["issuer"] == "https://evil.example"


def test_kubernetes_token(make_workload_issuer: Any) -> None:
    cluster = make_workload_issuer(keys=["RS256"])
    token = cluster.kubernetes_token(audience=AUDIENCE, namespace="payments", service_account="api")
    claims = verify(token, get(cluster.jwks_uri).json())
    assert claims["iss"] == cluster.issuer
    assert claims["sub"] == "system:serviceaccount:payments:api"
    assert claims["aud"] == [AUDIENCE]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"]["namespace"] == "payments"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "api"
    assert set(claims["kubernetes.io"]) == {"namespace", "node", "pod", "serviceaccount"}


@pytest.mark.parametrize(
    ("kwargs", "subject"),
    [
        ({}, "repo:acme/app:ref:refs/heads/main"),
        ({"ref": "refs/heads/release/v2"}, "repo:acme/app:ref:refs/heads/release/v2"),
        ({"environment": "prod"}, "repo:acme/app:environment:prod"),
        ({"event_name": "pull_request", "ref": "refs/pull/7/merge"}, "repo:acme/app:pull_request"),
    ],
)
def test_github_actions_token(workload_issuer: WorkloadIssuer, kwargs: dict[str, str], subject: str) -> None:
    token = workload_issuer.github_actions_token(audience=AUDIENCE, **kwargs)
    assert jwt.get_unverified_header(token)["typ"] == "JWT"
    claims = verify(token, get(workload_issuer.jwks_uri).json())
    assert (claims["iss"], claims["sub"], claims["aud"]) == (workload_issuer.issuer, subject, AUDIENCE)
    assert claims["repository"] == "acme/app" and claims["repository_owner"] == "acme"
    assert claims["job_workflow_ref"] == f"acme/app/.github/workflows/deploy.yml@{claims['ref']}"
    assert claims["nbf"] < claims["iat"] < claims["exp"]
    assert ("environment" in claims) is ("environment" in kwargs)


def test_spiffe_svid_and_bundle(workload_issuer: WorkloadIssuer) -> None:
    svid = workload_issuer.spiffe_svid(audience=AUDIENCE)
    workload_issuer.spiffe_bundle = True
    bundle = get(workload_issuer.jwks_uri).json()
    assert bundle == {
        "keys": [workload_issuer.current.public_jwk(use="jwt-svid")], "spiffe_sequence": 1, "spiffe_refresh_hint": 300,
    }
    claims = verify(svid, bundle)
    assert set(claims) == {"sub", "aud", "exp", "iat"}
    assert (claims["sub"], claims["aud"]) == ("spiffe://example.org/ns/payments/sa/api", [AUDIENCE])
    with_iss = verify(workload_issuer.spiffe_svid(audience=AUDIENCE, with_iss=True, with_iat=False), bundle)
    assert set(with_iss) == {"sub", "aud", "exp", "iss"}


def test_client_assertion_served_as_a_clients_jwks_uri(jwks_server: JwksServer) -> None:
    assertions = [jwks_server.client_assertion("svc", audience=AUDIENCE, lifetime=120) for _ in range(2)]
    jwks = get(jwks_server.jwks_uri).json()
    first, second = (verify(a, jwks) for a in assertions)
    assert set(first) == {"iss", "sub", "aud", "iat", "exp", "jti"}
    assert (first["iss"], first["sub"], first["aud"]) == ("svc", "svc", AUDIENCE)
    assert first["exp"] - first["iat"] == 120
    assert first["jti"] != second["jti"]
    assert jwks_server.hits_by_path == {"/jwks": 1}


def test_header_overrides_and_hostile_tokens() -> None:
    key = SigningKey.generate("ES256", kid="k1")
    no_kid = key.mint({"a": 1}, header_overrides={"kid": None, "typ": "client-authentication+jwt"})
    assert jwt.get_unverified_header(no_kid) == {"alg": "ES256", "typ": "client-authentication+jwt"}
    assert jwt.decode(no_kid, key.public_pem(), algorithms=["ES256"]) == {"a": 1}

    unsecured = key.mint({"a": 1}, header_overrides={"alg": "none"}, signature=b"")
    assert unsecured.endswith(".") and jwt.get_unverified_header(unsecured)["alg"] == "none"

    rsa = SigningKey.generate("RS256")
    lying = rsa.mint({"a": 1}, header_overrides={"alg": "PS256"})  # signed RS256, says PS256
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(lying, rsa.public_pem(), algorithms=["PS256"])
    assert jwt.decode(rsa.mint({"a": 1}, alg="PS256"), rsa.public_pem(), algorithms=["PS256"]) == {"a": 1}

    with pytest.raises(ValueError, match="cannot sign RS256"):
        key.mint({}, alg="RS256")


def test_jwk_set_for_registration() -> None:
    rsa, ed = SigningKey.generate("PS256", kid="r"), SigningKey.generate("EdDSA", kid="e")
    assert jwk_set(rsa, ed) == {"keys": [rsa.public_jwk(), ed.public_jwk()]}
    assert [set(k) for k in jwk_set(rsa, ed, alg=False)["keys"]] == [{"kty", "n", "e", "kid", "use"},
                                                                     {"kty", "crv", "x", "kid", "use"}]
    assert set(ALGORITHMS) >= {"ES256", "ES384", "PS256", "RS256", "EdDSA"}
