"""The nginx TLS proxy fixture forwards exactly what authserver relies on (RFC 8705, RFC 9440; DESIGN §9.4).

A real nginx (``tests/tls_proxy.py``) in front of a tiny echo server, with ``requests`` and
Go's x/oauth2 as TLS clients: the client's certificate arrives as URL-encoded PEM in one
header, whatever the client sent under that name or the RFC 9440 names is gone, and
requests nginx refuses never reach the upstream.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from tests import pki
from tests.tls_proxy import NginxError, TLSProxy, build_go_mtls_client, tls_proxy

CERT_HEADER = "X-SSL-Client-Cert"
ClientFiles = tuple[pki.Issued, Path, Path]  # the certificate and key, the certificate file, the key file
TIMEOUT = 10


class EchoServer(ThreadingHTTPServer):
    """Answers every request with what it received, shaped as a token response so OAuth clients accept it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class EchoHandler(BaseHTTPRequestHandler):
    server: EchoServer

    def do_GET(self) -> None:
        self._echo()

    def do_POST(self) -> None:
        self._echo()

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        seen = {"method": self.command, "path": self.path, "headers": self.headers.items(), "body": body}
        self.server.seen.append(seen)
        payload = json.dumps({"access_token": "echo", "token_type": "Bearer", "expires_in": 300, **seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def header(seen: dict[str, Any], name: str) -> list[str]:
    """Every value the upstream got under ``name``, matched as a WSGI server would (case, ``_`` for ``-``)."""
    wanted = name.lower().replace("_", "-")
    return [value for key, value in seen["headers"] if key.lower().replace("_", "-") == wanted]


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def proxy(upstream: EchoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSProxy]:
    with tls_proxy(upstream.url, tmp_path_factory.mktemp("nginx")) as running:
        yield running


@pytest.fixture
def seen(upstream: EchoServer) -> list[dict[str, Any]]:
    """The requests the upstream receives during this test."""
    upstream.seen.clear()
    return upstream.seen


@pytest.fixture(scope="module")
def root() -> pki.Issued:
    return pki.make_ca()


@pytest.fixture(scope="module")
def client_files(root: pki.Issued, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientFiles]:
    """Client certificates by kind."""
    directory = tmp_path_factory.mktemp("clients")
    intermediate = pki.make_ca("authserver test intermediate CA", issuer=root, path_length=0)
    kinds = {
        "ca-issued": pki.issue(root, subject="CN=svc,O=Acme", dns=["svc.example.com"]),
        "intermediate-rsa": pki.issue(
            intermediate, subject="CN=rsa svc", uris=["spiffe://example.com/svc"], key_type="rsa"
        ),
        "self-signed": pki.self_signed(dns=["self.example.com"]),
    }
    files = {}
    for kind, issued in kinds.items():
        certificate, key = issued.write(directory, kind)
        if kind == "intermediate-rsa":
            # The client sends its chain; nginx forwards only the leaf.
            certificate.write_bytes(issued.pem() + intermediate.pem())
        files[kind] = (issued, certificate, key)
    return files


def forwarded_der(seen: dict[str, Any]) -> bytes:
    """The DER of the one certificate nginx forwarded."""
    [value] = header(seen, CERT_HEADER)
    return x509.load_pem_x509_certificate(unquote(value).encode()).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kind", ["ca-issued", "intermediate-rsa", "self-signed"])
def test_client_certificate_reaches_upstream_as_url_encoded_pem(
    proxy: TLSProxy, seen: list[dict[str, Any]], client_files: dict[str, ClientFiles], kind: str
) -> None:
    issued, certificate, key = client_files[kind]
    response = requests.get(
        f"{proxy.url}/oauth/token", cert=(str(certificate), str(key)), verify=str(proxy.ca_file), timeout=TIMEOUT
    )
    assert response.status_code == 200
    [request] = seen
    assert forwarded_der(request) == issued.der()
    assert header(request, "X-Forwarded-Proto") == ["https"]
    assert header(request, "X-Forwarded-For") == ["127.0.0.1"]
    assert header(request, "Host") == [proxy.url.removeprefix("https://")]


def test_no_client_certificate_no_header(proxy: TLSProxy, seen: list[dict[str, Any]]) -> None:
    response = requests.get(f"{proxy.url}/oauth/token", verify=str(proxy.ca_file), timeout=TIMEOUT)
    assert response.status_code == 200
    [request] = seen
    assert header(request, CERT_HEADER) in ([], [""])


FORGED = {
    "Client-Cert": ":AAAA:",
    "client-cert-chain": ":AAAA:, :BBBB:",
    CERT_HEADER: "forged",
    # Django's WSGI environ reads these as HTTP_CLIENT_CERT and HTTP_X_SSL_CLIENT_CERT too.
    "Client_Cert": ":AAAA:",
    "X_SSL_Client_Cert": "forged",
    "X-Forwarded-Proto": "http",
}


@pytest.mark.parametrize("with_certificate", [True, False], ids=["with-certificate", "without-certificate"])
def test_client_sent_certificate_headers_never_reach_upstream(
    proxy: TLSProxy,
    seen: list[dict[str, Any]],
    client_files: dict[str, ClientFiles],
    with_certificate: bool,
) -> None:
    issued, certificate, key = client_files["ca-issued"]
    cert = (str(certificate), str(key)) if with_certificate else None
    response = requests.get(f"{proxy.url}/", headers=FORGED, cert=cert, verify=str(proxy.ca_file), timeout=TIMEOUT)
    assert response.status_code == 200
    [request] = seen
    assert header(request, "Client-Cert") == []
    assert header(request, "Client-Cert-Chain") == []
    assert header(request, "X-Forwarded-Proto") == ["https"]
    if with_certificate:
        assert forwarded_der(request) == issued.der()
    else:
        assert header(request, CERT_HEADER) in ([], [""])


def test_oversized_header_refused_by_nginx(proxy: TLSProxy, seen: list[dict[str, Any]]) -> None:
    big = {"X-Big": "a" * 100_000}
    response = requests.get(f"{proxy.url}/", headers=big, verify=str(proxy.ca_file), timeout=TIMEOUT)
    # nginx's 494 "Request Header Or Cookie Too Large", answered as JSON 400.
    assert_refused_in_json(response)
    assert seen == []


def test_plain_http_to_tls_port_refused(proxy: TLSProxy, seen: list[dict[str, Any]]) -> None:
    response = requests.get(proxy.url.replace("https://", "http://") + "/oauth/token", timeout=TIMEOUT)
    # nginx's 497, answered as JSON 400.
    assert_refused_in_json(response)
    assert seen == []


def assert_refused_in_json(response: requests.Response) -> None:
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {"error": "invalid_request", "error_description": "The proxy refused the request."}


def test_an_upstream_that_is_down_is_a_json_503(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with tls_proxy(f"http://127.0.0.1:{port}", tmp_path) as down:
        response = requests.post(f"{down.url}/oauth/token", data={"grant_type": "client_credentials"},
                                 verify=str(down.ca_file), timeout=TIMEOUT)
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"] == "temporarily_unavailable"


def test_large_body_and_response_pass_through_nginx_temp_files(proxy: TLSProxy, seen: list[dict[str, Any]]) -> None:
    """Bodies beyond nginx's memory buffers go through its temporary files, which its workers must be able to write."""
    body = "x" * 1_000_000
    response = requests.post(f"{proxy.url}/", data=body, verify=str(proxy.ca_file), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["body"] == body
    [request] = seen
    assert request["body"] == body


def test_go_client_sends_certificate_and_only_client_id(
    proxy: TLSProxy,
    seen: list[dict[str, Any]],
    client_files: dict[str, ClientFiles],
    tmp_path: Path,
) -> None:
    issued, certificate, key = client_files["ca-issued"]
    program = build_go_mtls_client(tmp_path)
    env = {
        **os.environ,
        "TOKEN_URL": f"{proxy.url}/oauth/token",
        "CLIENT_ID": "mtls-client",
        "CERT_FILE": str(certificate),
        "KEY_FILE": str(key),
        "CA_FILE": str(proxy.ca_file),
        "SCOPE": "read write",
    }
    result = subprocess.run([program], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)
    assert token["access_token"] == "echo"
    assert token["token_type"] == "Bearer"
    [request] = seen
    assert request["method"] == "POST"
    assert parse_qs(request["body"], keep_blank_values=True) == {
        "client_id": ["mtls-client"],
        "grant_type": ["client_credentials"],
        "scope": ["read write"],
    }
    assert header(request, "Authorization") == []
    assert forwarded_der(request) == issued.der()


def test_pki_chain_verifies_with_cryptography(root: pki.Issued) -> None:
    """What authserver will do with a forwarded certificate: cryptography's client verifier accepts the chain."""
    intermediate = pki.make_ca("authserver test intermediate CA", issuer=root, path_length=0)
    leaf = pki.issue(intermediate, dns=["svc.example.com"])
    verifier = PolicyBuilder().store(Store([root.certificate])).time(datetime.now(UTC)).build_client_verifier()
    verified = verifier.verify(leaf.certificate, [intermediate.certificate])
    assert verified.chain == [leaf.certificate, intermediate.certificate, root.certificate]
    assert verified.subjects == [x509.DNSName("svc.example.com")]


def test_nginx_that_cannot_start_reports_its_error_log(tmp_path: Path) -> None:
    with pytest.raises(NginxError, match=r"(?s)exited with 1.*invalid URL prefix"):
        with tls_proxy("ftp://127.0.0.1:1", tmp_path):
            pass
