"""mTLS client authentication and certificate-bound tokens through a real nginx (RFC 8705,
RFC 9440; DESIGN §9.4): one gunicorn (two workers) behind the nginx of ``tests/tls_proxy.py``,
which terminates TLS, asks for a client certificate and forwards it as URL-encoded PEM
(``MTLS_CLIENT_CERT_HEADER=X-SSL-Client-Cert``), with loopback as the one trusted proxy.

Clients are ``requests`` and Go's x/oauth2, each presenting its certificate in the TLS
handshake: bound tokens for both mTLS methods, their use at the management API with and
without the certificate, forged certificate headers, refusals as JSON, and over-long headers
(refused by nginx, or passed by it and refused by gunicorn).  The in-process tests of the
same rules are in ``tests/test_mtls.py``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import requests

from clients.certificates import thumbprint
from tests import pki
from tests.live import _free_port, fresh_postgres_database, manage, run_gunicorn, server_env
from tests.tls_proxy import TLSProxy, build_go_mtls_client, tls_proxy

pytestmark = pytest.mark.live

TIMEOUT = 10  # seconds for any one request
GO_TIMEOUT = 60
CERT_HEADER = "X-SSL-Client-Cert"
BILLING_DNS = "billing.example.com"
SCOPES = {"billing": "clients:read", "edge": None}  # as registered below
CLIENT_AUTH_FAILED = {"error": "invalid_client", "error_description": "Client authentication failed."}
INVALID_TOKEN = 'Bearer realm="authserver", error="invalid_token"'


@dataclass(frozen=True)
class Credential:
    """A client certificate and its files, as a TLS client loads them."""

    issued: pki.Issued
    cert_file: Path
    key_file: Path

    @property
    def pair(self) -> tuple[str, str]:
        return str(self.cert_file), str(self.key_file)

    @property
    def x5t_s256(self) -> str:
        return thumbprint(self.issued.certificate)


@dataclass(frozen=True)
class Deployment:
    proxy: TLSProxy  # the one way in: every request of these tests goes through nginx
    credentials: dict[str, Credential]

    @property
    def issuer(self) -> str:
        return self.proxy.url

    def cert(self, name: str) -> Credential:
        return self.credentials[name]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite, or a fresh PostgreSQL database when the suite runs on PostgreSQL (module-scoped
    ``tests.live.gunicorn_database_url``)."""
    test_url = os.environ.get("DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path_factory.mktemp('mtls-nginx-db') / 'db.sqlite3'}"
        return
    with fresh_postgres_database(test_url, prefix="authserver_mtls_nginx") as url:
        yield url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("mtls-nginx")
    root = pki.make_ca("authserver test clients CA")
    ca_file, _ = root.write(directory, "clients-ca")
    other_ca = pki.make_ca("someone else's CA")
    issued = {
        "billing": pki.issue(root, subject="CN=billing,O=Example", dns=[BILLING_DNS]),
        # Also valid for billing, but not the certificate its token was bound to.
        "billing-spare": pki.issue(root, subject="CN=billing spare,O=Example", dns=[BILLING_DNS], key_type="rsa"),
        "foreign": pki.issue(other_ca, subject="CN=billing,O=Example", dns=[BILLING_DNS]),
        "wrong-san": pki.issue(root, subject="CN=billing,O=Example", dns=["payroll.example.com"]),
        "edge": pki.self_signed(subject="CN=edge", dns=["edge.example.com"]),
    }
    credentials = {name: Credential(item, *item.write(directory, name)) for name, item in issued.items()}

    # nginx first, on its own port, so that gunicorn starts with the public URL as ISSUER;
    # gunicorn's port is chosen now and nginx connects to it per request.
    port = _free_port()
    with tls_proxy(f"http://127.0.0.1:{port}", directory / "nginx", client_cert_header=CERT_HEADER) as proxy:
        env = server_env(
            database_url=database_url, issuer=proxy.url, BIND=f"127.0.0.1:{port}",
            TRUSTED_PROXIES="127.0.0.1/32", USE_X_FORWARDED_PROTO="true",
            MTLS_CLIENT_CERT_HEADER=CERT_HEADER, MTLS_TRUSTED_CA_FILE=str(ca_file),
            # The refusal tests fail billing's authentication several times a minute on purpose.
            FAILED_AUTH_RATE_PER_CLIENT="1000/m",
        )
        manage(env, "migrate", "--noinput")
        manage(env, "createclient", "billing", "--client-id", "billing", "--auth-method", "tls_client_auth",
               "--tls-san-dns", BILLING_DNS, "--scope", "clients:read")
        # The operator registers the self-signed certificate itself, as PEM.
        manage(env, "createclient", "edge", "--client-id", "edge", "--auth-method", "self_signed_tls_client_auth",
               "--jwks-file", str(credentials["edge"].cert_file))
        with run_gunicorn(env, log=directory / "gunicorn.log", access_log=directory / "access.log"):
            yield Deployment(proxy=proxy, credentials=credentials)


def token_request(
    deployment: Deployment, client_id: str, credential: Credential | None, *, headers: dict[str, str] | None = None
) -> requests.Response:
    """The client credentials grant over mTLS through nginx: only ``client_id`` in the body."""
    return requests.post(
        f"{deployment.proxy.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id},
        cert=credential.pair if credential else None, headers=headers,
        verify=str(deployment.proxy.ca_file), timeout=TIMEOUT,
    )


def verified_claims(deployment: Deployment, access_token: str) -> dict[str, Any]:
    """The token's claims, its signature checked with PyJWT against the JWKS served through nginx."""
    jwks = requests.get(
        f"{deployment.proxy.url}/.well-known/jwks.json", verify=str(deployment.proxy.ca_file), timeout=TIMEOUT
    )
    assert jwks.status_code == 200, jwks.text
    key = jwt.PyJWKSet.from_dict(jwks.json())[jwt.get_unverified_header(access_token)["kid"]]
    return jwt.decode(
        access_token, key=key, algorithms=["ES256", "RS256", "EdDSA"], issuer=deployment.issuer,
        audience=deployment.issuer, options={"require": ["exp", "iat", "iss", "sub", "jti", "aud"]},
    )


def assert_bound_token(deployment: Deployment, response: requests.Response, client_id: str,
                       credential: Credential) -> str:
    """A Bearer token for ``client_id`` bound to ``credential``'s certificate (RFC 8705 §3.1)."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    scope = SCOPES[client_id]
    assert body == {"access_token": body["access_token"], "token_type": "Bearer", "expires_in": 3600,
                    **({"scope": scope} if scope else {})}
    claims = verified_claims(deployment, body["access_token"])
    assert (claims["sub"], claims["client_id"], claims.get("scope")) == (client_id, client_id, scope)
    assert claims["cnf"] == {"x5t#S256": credential.x5t_s256}
    return str(body["access_token"])


def assert_oauth_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error, as authserver (not nginx) renders it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error
    assert body["error_description"]
    return dict(body)


def api_get(deployment: Deployment, access_token: str, credential: Credential | None,
            headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(
        f"{deployment.proxy.url}/client", headers={"Authorization": f"Bearer {access_token}", **(headers or {})},
        cert=credential.pair if credential else None, verify=str(deployment.proxy.ca_file), timeout=TIMEOUT,
    )


def forged_headers(credential: Credential) -> dict[str, str]:
    """The victim's certificate, as a client (not nginx) would claim it in each header format."""
    return {
        "Client-Cert": ":" + base64.b64encode(credential.issued.der()).decode() + ":",
        CERT_HEADER: quote(credential.issued.pem().decode(), safe=""),
    }


@pytest.fixture(scope="module")
def billing_token(deployment: Deployment) -> str:
    billing = deployment.cert("billing")
    return assert_bound_token(deployment, token_request(deployment, "billing", billing), "billing", billing)


# --- bound tokens for both mTLS methods ----------------------------------------------------------


@pytest.mark.parametrize(("client_id", "certificate"), [("billing", "billing"), ("edge", "edge")],
                         ids=["tls_client_auth", "self_signed_tls_client_auth"])
def test_a_client_presenting_its_certificate_to_nginx_gets_a_bound_token(
    deployment: Deployment, client_id: str, certificate: str
) -> None:
    credential = deployment.cert(certificate)
    assert_bound_token(deployment, token_request(deployment, client_id, credential), client_id, credential)


def test_go_x_oauth2_with_a_client_certificate_gets_a_bound_token(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    program = build_go_mtls_client(tmp_path_factory.mktemp("go-mtls"))
    billing = deployment.cert("billing")
    env = {
        **os.environ, "TOKEN_URL": f"{deployment.proxy.url}/oauth/token", "CLIENT_ID": "billing",
        "CERT_FILE": str(billing.cert_file), "KEY_FILE": str(billing.key_file),
        "CA_FILE": str(deployment.proxy.ca_file), "SCOPE": "clients:read",
    }
    done = subprocess.run([program], env=env, capture_output=True, text=True, timeout=GO_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)
    assert token["token_type"] == "Bearer"
    claims = verified_claims(deployment, token["access_token"])
    assert claims["client_id"] == "billing"
    assert claims["scope"] == "clients:read"
    assert claims["cnf"] == {"x5t#S256": billing.x5t_s256}


# --- the bound token at the management API ------------------------------------------------------


def test_a_bound_token_works_at_the_api_with_its_certificate(deployment: Deployment, billing_token: str) -> None:
    response = api_get(deployment, billing_token, deployment.cert("billing"))
    assert response.status_code == 200, response.text
    assert [client["client_id"] for client in response.json()["results"]] == ["billing", "edge"]


@pytest.mark.parametrize("case", ["no certificate", "another valid certificate", "forged headers",
                                  "forged headers beside another certificate"])
def test_a_bound_token_is_refused_at_the_api_without_its_certificate(
    deployment: Deployment, billing_token: str, case: str
) -> None:
    forged = forged_headers(deployment.cert("billing"))
    credential, headers = {
        "no certificate": (None, {}),
        "another valid certificate": (deployment.cert("billing-spare"), {}),
        "forged headers": (None, forged),
        "forged headers beside another certificate": (deployment.cert("wrong-san"), forged),
    }[case]
    response = api_get(deployment, billing_token, credential, headers)
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    # The management API's error body (DRF's), the RFC 6750 error in the challenge.
    assert response.json() == {"detail": "This access token is bound to a TLS client certificate this request lacks."}


# --- refusals at the token endpoint, as JSON -----------------------------------------------------


@pytest.mark.parametrize(("client_id", "certificate"), [
    ("billing", "foreign"),  # the registered SAN, but from a CA not in MTLS_TRUSTED_CA_FILE
    ("billing", "wrong-san"),  # our CA, but not the registered SAN
    ("billing", "edge"),  # self-signed
    ("billing", None),  # no certificate in the handshake
    ("edge", "billing"),  # a valid CA-issued certificate is not the registered self-signed one
])
def test_a_certificate_that_does_not_prove_the_client_is_invalid_client(
    deployment: Deployment, client_id: str, certificate: str | None
) -> None:
    credential = deployment.cert(certificate) if certificate else None
    body = assert_oauth_error(token_request(deployment, client_id, credential), 401, "invalid_client")
    assert body == CLIENT_AUTH_FAILED  # the reason goes to the log only


@pytest.mark.parametrize("client_id", ["billing", "edge"])
def test_forged_certificate_headers_through_nginx_prove_nothing(deployment: Deployment, client_id: str) -> None:
    # nginx replaces X-SSL-Client-Cert with what the handshake showed (nothing) and drops Client-Cert.
    forged = forged_headers(deployment.cert(client_id))
    body = assert_oauth_error(token_request(deployment, client_id, None, headers=forged), 401, "invalid_client")
    assert body == CLIENT_AUTH_FAILED


# --- discovery, and requests nginx or gunicorn refuse -------------------------------------------


def test_metadata_through_nginx_names_the_public_urls_and_the_mtls_methods(deployment: Deployment) -> None:
    response = requests.get(f"{deployment.proxy.url}/.well-known/oauth-authorization-server",
                            verify=str(deployment.proxy.ca_file), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert {name: metadata[name] for name in ("issuer", "token_endpoint", "jwks_uri")} == {
        "issuer": deployment.issuer,
        "token_endpoint": f"{deployment.issuer}/oauth/token",
        "jwks_uri": f"{deployment.issuer}/.well-known/jwks.json",
    }
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(metadata["token_endpoint_auth_methods_supported"])
    assert metadata["tls_client_certificate_bound_access_tokens"] is True


def test_a_header_nginx_refuses_never_harms_the_server(deployment: Deployment) -> None:
    billing = deployment.cert("billing")
    response = token_request(deployment, "billing", billing, headers={"X-Big": "a" * 100_000})
    # nginx's own 494 (large_client_header_buffers), answered in JSON by the configuration's error_page.
    body = assert_oauth_error(response, 400, "invalid_request")
    assert body["error_description"] == "The proxy refused the request."
    assert_bound_token(deployment, token_request(deployment, "billing", billing), "billing", billing)


def test_a_header_nginx_passes_but_gunicorn_refuses_is_json(deployment: Deployment) -> None:
    # Over gunicorn's limit_request_field_size (8190 bytes), under nginx's 16k buffers.
    billing = deployment.cert("billing")
    response = token_request(deployment, "billing", billing, headers={"X-Big": "a" * 12_000})
    body = assert_oauth_error(response, 431, "invalid_request")
    assert body["error_description"] == "A request header field is too large."
    assert_bound_token(deployment, token_request(deployment, "billing", billing), "billing", billing)


# --- README's mTLS section, as written ---------------------------------------------------------


README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _readme_block(language: str, containing: str) -> str:
    blocks = [block.split("\n", 1)[1] for block in README.split("```")[1::2] if block.startswith(language + "\n")]
    (block,) = [block for block in blocks if containing in block]
    return block


def test_readme_shows_the_nginx_configuration_the_suite_runs() -> None:
    from tests.tls_proxy import NGINX_SERVER, render

    shown = render(
        NGINX_SERVER, listen="443", server_name="auth.example.com", certificate="/etc/nginx/tls/auth.example.com.crt",
        certificate_key="/etc/nginx/tls/auth.example.com.key", upstream="http://127.0.0.1:8000",
        client_cert_header=CERT_HEADER,
    )
    assert _readme_block("nginx", "ssl_verify_client") == shown


def test_readme_curl_example_gets_a_bound_token(deployment: Deployment) -> None:
    billing = deployment.cert("billing")
    command = _readme_block("sh", "curl --cert").split("\n")
    curl = " ".join(line.rstrip("\\").strip() for line in command[command.index(
        next(line for line in command if line.startswith("curl"))):] if line.strip())
    curl = (curl.replace("https://auth.example.com", deployment.proxy.url)
            .replace("billing.crt", str(billing.cert_file)).replace("billing.key", str(billing.key_file)))
    done = subprocess.run(
        [*curl.split(), "--cacert", str(deployment.proxy.ca_file), "--silent", "--show-error", "--max-time", "10"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert verified_claims(deployment, body["access_token"])["cnf"] == {"x5t#S256": billing.x5t_s256}
