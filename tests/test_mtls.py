"""mTLS client authentication and certificate-bound tokens (RFC 8705, RFC 9440; DESIGN §9.4)
through the Django test client, as a TLS-terminating proxy would forward the certificate:
each subject field, chain validation, self-signed certificates, the binding and its
introspection, the proxy trust rule, both header formats and their bad inputs."""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from clients.certificates import thumbprint
from tests import pki
from tests.conftest import TOKEN_PATHS, assert_oauth_error, basic, jwks_verify, post_token

GRANT = {"grant_type": "client_credentials"}
PROXY = "10.9.8.7"


def client_cert(issued: pki.Issued) -> str:
    """RFC 9440 §2.2: the DER certificate as a structured-field byte sequence."""
    return ":" + base64.b64encode(issued.der()).decode() + ":"


def cert_chain(*issued: pki.Issued) -> str:
    return ", ".join(client_cert(item) for item in issued)


@pytest.fixture
def root(tmp_path: Path, settings: Any) -> pki.Issued:
    """A CA in MTLS_TRUSTED_CA_FILE, and a trusted proxy at PROXY."""
    ca = pki.make_ca()
    ca_file = tmp_path / "clients-ca.pem"
    ca_file.write_bytes(ca.pem())
    settings.MTLS_TRUSTED_CA_FILE = str(ca_file)
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.9.8.0/24"),)
    settings.MTLS_CLIENT_CERT_HEADER = ""
    return ca


def token(http: Any, client_id: str, certificate: pki.Issued | str | None = None, *, chain: str | None = None,
          remote: str = PROXY, path: str = "/oauth/token", data: dict[str, Any] | None = None, **extra: Any) -> Any:
    headers: dict[str, str] = {"REMOTE_ADDR": remote}
    if certificate is not None:
        headers["HTTP_CLIENT_CERT"] = certificate if isinstance(certificate, str) else client_cert(certificate)
    if chain is not None:
        headers["HTTP_CLIENT_CERT_CHAIN"] = chain
    return post_token(http, {**GRANT, "client_id": client_id, **(data or {})}, path=path, **headers, **extra)


def bound_claims(http: Any, response: Any, certificate: pki.Issued) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    claims = jwks_verify(http, body["access_token"])
    assert claims["cnf"] == {"x5t#S256": thumbprint(certificate.certificate)}
    return claims


def refusal_reasons(caplog: Any) -> list[str]:
    return [record.reason for record in caplog.records if hasattr(record, "reason")]


SUBJECTS = [
    ("tls_client_auth_subject_dn", "CN=billing,O=Example Corp,C=DE", {"subject": "CN=billing,O=Example Corp,C=DE"}),
    ("tls_client_auth_san_dns", "billing.example.com", {"dns": ["other.example.com", "billing.example.com"]}),
    ("tls_client_auth_san_uri", "spiffe://example.com/ns/prod/sa/billing",
     {"uris": ["spiffe://example.com/ns/prod/sa/billing"]}),
    ("tls_client_auth_san_ip", "2001:db8::7", {"ips": ["192.0.2.1", "2001:db8::7"]}),
    ("tls_client_auth_san_email", "billing@Example.com", {"emails": ["billing@example.COM"]}),
]


@pytest.mark.parametrize(("field", "value", "names"), SUBJECTS, ids=[s[0] for s in SUBJECTS])
@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_tls_client_auth_by_each_subject_field_gets_a_bound_token(
    http, make_client, root, field, value, names, path
):
    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth", **{field: value})
    certificate = pki.issue(root, **names)
    claims = bound_claims(http, token(http, "billing", certificate, path=path), certificate)
    assert claims["client_id"] == "billing"


@pytest.mark.parametrize(("field", "value", "names"), [
    ("tls_client_auth_subject_dn", "CN=billing,O=Example Corp,C=DE", {"subject": "CN=billing,O=Other,C=DE"}),
    ("tls_client_auth_subject_dn", "CN=billing,O=Example Corp,C=DE", {"subject": "C=DE,O=Example Corp,CN=billing"}),
    ("tls_client_auth_subject_dn", "CN=billing,O=Example Corp,C=DE",
     {"subject": "CN=other", "dns": ["CN=billing,O=Example Corp,C=DE"]}),
    ("tls_client_auth_san_dns", "billing.example.com", {"subject": "CN=billing.example.com"}),
    ("tls_client_auth_san_dns", "billing.example.com", {"dns": ["evil-billing.example.com", "*.example.com"]}),
    ("tls_client_auth_san_uri", "spiffe://example.com/billing", {"uris": ["spiffe://example.com/billing/x"]}),
    ("tls_client_auth_san_uri", "spiffe://example.com/billing", {"dns": ["spiffe://example.com/billing"]}),
    ("tls_client_auth_san_ip", "192.0.2.1", {"ips": ["192.0.2.10"]}),
    ("tls_client_auth_san_email", "billing@example.com", {"emails": ["Billing@example.com"]}),
])
def test_a_certificate_without_the_registered_value_is_invalid_client(
    http, make_client, root, caplog, field, value, names
):
    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth", **{field: value})
    caplog.set_level(logging.INFO, logger="authserver")
    assert_oauth_error(token(http, "billing", pki.issue(root, **names)), 401, "invalid_client")
    assert refusal_reasons(caplog) == [f"tls_client_auth: certificate does not carry the registered {field}"]


def test_a_subject_dn_is_compared_as_a_name_not_as_text(http, make_client, root):
    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_subject_dn="cn=Billing,o=example   corp,c=de")
    certificate = pki.issue(root, subject="CN=billing,O=Example Corp,C=DE")
    bound_claims(http, token(http, "billing", certificate), certificate)


def test_a_leaf_without_a_san_passes_for_a_subject_dn_client(http, make_client, root):
    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_subject_dn="CN=billing")
    certificate = pki.issue(root, subject="CN=billing")
    assert certificate.certificate.extensions.get_extension_for_oid  # no SAN in it:
    assert not [e for e in certificate.certificate.extensions if e.oid.dotted_string == "2.5.29.17"]
    bound_claims(http, token(http, "billing", certificate), certificate)


@pytest.fixture
def billing(make_client: Any, root: pki.Issued) -> str:
    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_san_dns="billing.example.com")
    return "billing"


def test_an_intermediate_in_client_cert_chain_completes_the_chain(http, billing, root):
    intermediate = pki.make_ca("issuing CA", issuer=root)
    certificate = pki.issue(intermediate, dns=["billing.example.com"])
    bound_claims(http, token(http, billing, certificate, chain=cert_chain(intermediate)), certificate)
    # RFC 9440 §2.3 allows the chain to be split over several header lines, which arrive joined.
    bound_claims(http, token(http, billing, certificate, chain=cert_chain(intermediate) + ", " + cert_chain(root)),
                 certificate)


@pytest.mark.parametrize("case", [
    "intermediate missing", "another CA", "expired", "not yet valid", "server certificate only",
    "CA certificate as leaf", "self-signed",
])
def test_a_certificate_that_does_not_chain_validly_is_invalid_client(http, billing, root, caplog, case):
    now = datetime.now(UTC)
    other = pki.make_ca("someone else's CA")
    intermediate = pki.make_ca("issuing CA", issuer=root)
    dns = {"dns": ["billing.example.com"]}
    certificate, chain = {
        "intermediate missing": (pki.issue(intermediate, **dns), None),
        "another CA": (pki.issue(other, **dns), cert_chain(root)),
        "expired": (pki.issue(root, **dns, not_before=now - timedelta(days=30), not_after=now - timedelta(hours=1)),
                    None),
        "not yet valid": (pki.issue(root, **dns, not_before=now + timedelta(hours=1)), None),
        "server certificate only": (pki.issue(root, **dns, client_auth=False, server_auth=True), None),
        "CA certificate as leaf": (intermediate, None),
        "self-signed": (pki.self_signed(dns=["billing.example.com"]), None),
    }[case]
    caplog.set_level(logging.INFO, logger="authserver")
    assert_oauth_error(token(http, billing, certificate, chain=chain), 401, "invalid_client")
    (reason,) = refusal_reasons(caplog)
    assert reason.startswith("tls_client_auth: certificate chain: "), reason


def test_without_mtls_trusted_ca_file_no_chain_is_trusted(http, billing, root, settings, caplog):
    settings.MTLS_TRUSTED_CA_FILE = ""
    caplog.set_level(logging.INFO, logger="authserver")
    assert_oauth_error(token(http, billing, pki.issue(root, dns=["billing.example.com"])), 401, "invalid_client")
    assert refusal_reasons(caplog) == [
        "tls_client_auth: MTLS_TRUSTED_CA_FILE is not set or holds no certificate"
    ]


def test_a_replaced_ca_file_is_read_again(http, billing, root, settings):
    other = pki.make_ca("next year's CA")
    certificate = pki.issue(other, dns=["billing.example.com"])
    assert_oauth_error(token(http, billing, certificate), 401, "invalid_client")
    ca_file = Path(settings.MTLS_TRUSTED_CA_FILE)
    ca_file.write_bytes(root.pem() + other.pem())
    import os

    os.utime(ca_file, (1, 1))  # a different mtime, whatever the clock's resolution
    bound_claims(http, token(http, billing, certificate), certificate)


@pytest.mark.parametrize("remote", ["192.0.2.55", "10.9.9.1", "127.0.0.1"])
def test_a_client_cert_header_from_an_untrusted_peer_is_ignored(http, billing, root, caplog, remote):
    caplog.set_level(logging.INFO, logger="authserver")
    certificate = pki.issue(root, dns=["billing.example.com"])
    assert_oauth_error(token(http, billing, certificate, remote=remote), 401, "invalid_client")
    assert refusal_reasons(caplog) == ["tls_client_auth: no client certificate"]


def test_no_certificate_at_all_is_invalid_client(http, billing):
    assert_oauth_error(token(http, billing), 401, "invalid_client")


def test_a_secret_is_not_accepted_for_an_mtls_client(http, billing, root, make_client, caplog):
    # An mTLS client has no secret; one of another client's, or a made-up one, proves nothing.
    _, other_secret = make_client(client_id="other")
    caplog.set_level(logging.INFO, logger="authserver")
    certificate = pki.issue(root, dns=["billing.example.com"])
    response = post_token(http, GRANT, authorization=basic(billing, other_secret), REMOTE_ADDR=PROXY,
                          HTTP_CLIENT_CERT=client_cert(certificate))
    assert_oauth_error(response, 401, "invalid_client")
    assert refusal_reasons(caplog) == ["wrong secret"]


def test_a_secret_client_sending_only_its_id_and_a_certificate_is_refused(http, make_client, root, caplog):
    make_client(client_id="secretive")
    caplog.set_level(logging.INFO, logger="authserver")
    certificate = pki.issue(root, dns=["secretive"])
    assert_oauth_error(token(http, "secretive", certificate), 401, "invalid_client")
    assert_oauth_error(token(http, "no-such-client", certificate), 401, "invalid_client")
    assert refusal_reasons(caplog) == ["no client secret", "unknown client"]


def test_a_disabled_mtls_client_is_refused(http, billing, root):
    from clients.models import Client
    from clients.services import client_update

    client_update(client=Client.objects.get(client_id=billing), fields={"enabled": False})
    assert_oauth_error(token(http, billing, pki.issue(root, dns=["billing.example.com"])), 401, "invalid_client")


# --- self_signed_tls_client_auth (§2.2) ---------------------------------------------------------


def jwk_with_certificate(issued: pki.Issued) -> dict[str, Any]:
    from clients.jwks import key_set_from_pem

    return key_set_from_pem(issued.pem().decode())


def test_self_signed_certificate_registered_in_jwks_gets_a_bound_token(http, make_client, root, settings):
    settings.MTLS_TRUSTED_CA_FILE = ""  # no CA is involved
    mine, spare = pki.self_signed(), pki.self_signed(subject="CN=spare", key_type="rsa")
    keys = {"keys": jwk_with_certificate(mine)["keys"] + jwk_with_certificate(spare)["keys"]}
    _, secret = make_client(client_id="edge", token_endpoint_auth_method="self_signed_tls_client_auth", jwks=keys)
    assert secret is None
    bound_claims(http, token(http, "edge", mine), mine)
    bound_claims(http, token(http, "edge", spare), spare)


def test_self_signed_ignores_the_validity_period_and_chains(http, make_client, root):
    # RFC 8705 §2.2: the registered certificate itself is the trust; no chain, no CA.
    now = datetime.now(UTC)
    old = pki.self_signed(not_before=now - timedelta(days=400), not_after=now - timedelta(days=35))
    make_client(client_id="edge", token_endpoint_auth_method="self_signed_tls_client_auth",
                jwks=jwk_with_certificate(old))
    bound_claims(http, token(http, "edge", old), old)


@pytest.mark.parametrize("case", ["another self-signed", "same key, other certificate", "CA-issued"])
def test_a_certificate_not_registered_is_invalid_client(http, make_client, root, caplog, case):
    mine = pki.self_signed()
    make_client(client_id="edge", token_endpoint_auth_method="self_signed_tls_client_auth",
                jwks=jwk_with_certificate(mine))
    presented = {
        "another self-signed": pki.self_signed(),
        "same key, other certificate": _resigned(mine),
        "CA-issued": pki.issue(root, subject="CN=self-signed client"),
    }[case]
    caplog.set_level(logging.INFO, logger="authserver")
    assert_oauth_error(token(http, "edge", presented), 401, "invalid_client")
    assert refusal_reasons(caplog) == [
        "self_signed_tls_client_auth: certificate is none of the client's registered certificates"
    ]


def _resigned(issued: pki.Issued) -> pki.Issued:
    """A second certificate for the same key and subject (another serial number)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    original = issued.certificate
    builder = (
        x509.CertificateBuilder().subject_name(original.subject).issuer_name(original.issuer)
        .public_key(original.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(original.not_valid_before_utc).not_valid_after(original.not_valid_after_utc)
    )
    for extension in original.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return pki.Issued(builder.sign(issued.key, hashes.SHA256()), issued.key)  # type: ignore[arg-type]


# --- certificate-bound tokens for other clients, and their use ---------------------------------


def test_binding_is_off_unless_asked_for(http, make_client, root):
    make_client(client_id="loose", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_san_dns="loose.example.com", tls_client_certificate_bound_access_tokens=False)
    response = token(http, "loose", pki.issue(root, dns=["loose.example.com"]))
    assert response.status_code == 200, response.content
    assert "cnf" not in jwks_verify(http, response.json()["access_token"])


def test_a_secret_client_may_bind_its_tokens_to_its_certificate(http, make_client, root):
    _, secret = make_client(client_id="hybrid", tls_client_certificate_bound_access_tokens=True)
    certificate = pki.self_signed()  # no CA involved: the TLS handshake proved the key
    response = post_token(http, GRANT, authorization=basic("hybrid", secret), REMOTE_ADDR=PROXY,
                          HTTP_CLIENT_CERT=client_cert(certificate))
    bound_claims(http, response, certificate)
    body = assert_oauth_error(post_token(http, GRANT, authorization=basic("hybrid", secret), REMOTE_ADDR=PROXY),
                              400, "invalid_request")
    assert "certificate" in body["error_description"]


def test_a_secret_client_without_binding_ignores_a_certificate(http, make_client, root):
    _, secret = make_client(client_id="plain")
    response = post_token(http, GRANT, authorization=basic("plain", secret), REMOTE_ADDR=PROXY,
                          HTTP_CLIENT_CERT="garbage")
    assert response.status_code == 200, response.content
    assert "cnf" not in jwks_verify(http, response.json()["access_token"])


def test_dpop_and_a_certificate_bind_one_token_to_both(http, make_client, root):
    from tests.test_dpop import jkt, proof
    from tests.workload_issuer import new_key

    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_san_dns="billing.example.com")
    certificate, key = pki.issue(root, dns=["billing.example.com"]), new_key("ES256")
    response = token(http, "billing", certificate, HTTP_DPOP=proof(key))
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    claims = jwks_verify(http, response.json()["access_token"])
    assert claims["cnf"] == {"jkt": jkt(key), "x5t#S256": thumbprint(certificate.certificate)}


def test_introspection_returns_the_certificate_binding(http, make_client, billing, root):
    certificate = pki.issue(root, dns=["billing.example.com"])
    access_token = token(http, billing, certificate).json()["access_token"]
    _, secret = make_client(client_id="api")
    response = post_token(http, {"token": access_token}, path="/oauth/introspect", authorization=basic("api", secret))
    body = response.json()
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["cnf"] == {"x5t#S256": thumbprint(certificate.certificate)}


def test_an_mtls_client_authenticates_at_introspection_and_revocation(http, billing, root, make_client):
    certificate = pki.issue(root, dns=["billing.example.com"])
    access_token = token(http, billing, certificate).json()["access_token"]
    headers = {"REMOTE_ADDR": PROXY, "HTTP_CLIENT_CERT": client_cert(certificate)}
    introspected = post_token(http, {"token": access_token, "client_id": billing}, path="/oauth/introspect",
                              **headers)
    assert introspected.json()["active"] is True
    revoked = post_token(http, {"token": access_token, "client_id": billing}, path="/oauth/revoke", **headers)
    assert revoked.status_code == 200, revoked.content
    other = pki.issue(root, dns=["someone.example.com"])
    refused = post_token(http, {"token": access_token, "client_id": billing}, path="/oauth/introspect",
                         REMOTE_ADDR=PROXY, HTTP_CLIENT_CERT=client_cert(other))
    assert_oauth_error(refused, 401, "invalid_client")


def test_the_management_api_accepts_a_bound_token_only_with_its_certificate(http, make_client, root):
    make_client(client_id="operator", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_san_dns="operator.example.com", allowed_scopes=["clients:read"])
    certificate = pki.issue(root, dns=["operator.example.com"])
    access_token = token(http, "operator", certificate).json()["access_token"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {access_token}", "REMOTE_ADDR": PROXY}
    assert http.get("/client", HTTP_CLIENT_CERT=client_cert(certificate), **bearer).status_code == 200
    for headers in (
        {},  # no certificate
        {"HTTP_CLIENT_CERT": client_cert(pki.issue(root, dns=["operator.example.com"]))},  # another one
        {"HTTP_CLIENT_CERT": ":bm90IGEgY2VydA==:"},  # unreadable
    ):
        response = http.get("/client", **bearer, **headers)
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
        assert response["Content-Type"] == "application/json"
    # From an untrusted peer the header is not believed: the stolen token stays useless.
    stolen = http.get("/client", HTTP_AUTHORIZATION=f"Bearer {access_token}", REMOTE_ADDR="192.0.2.9",
                      HTTP_CLIENT_CERT=client_cert(certificate))
    assert stolen.status_code == 401


# --- nginx's header: a URL-encoded PEM (MTLS_CLIENT_CERT_HEADER) ---------------------------------


def test_a_url_encoded_pem_header_names_the_certificate(http, billing, root, settings):
    settings.MTLS_CLIENT_CERT_HEADER = "X-SSL-Client-Cert"
    certificate = pki.issue(root, dns=["billing.example.com"])
    escaped = quote(certificate.pem().decode(), safe="")
    bound_claims(http, token(http, billing, HTTP_X_SSL_CLIENT_CERT=escaped), certificate)
    # With the header configured, RFC 9440's Client-Cert is not read at all.
    assert_oauth_error(token(http, billing, certificate), 401, "invalid_client")
    # nginx sends the header empty when the client presented no certificate.
    assert_oauth_error(token(http, billing, HTTP_X_SSL_CLIENT_CERT=""), 401, "invalid_client")


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "garbage",
    ":not base64!:",
    ":AAAA",
    ":" + base64.b64encode(b"not a certificate").decode() + ":",
    "?1",
    "(:AAAA: :AAAA:)",
    ":" + "A" * 40000 + ":",
    "\u00e9",
    ":AAAA:;param=1, :AAAA:",
])
def test_a_malformed_client_cert_is_invalid_client(http, billing, caplog, header):
    caplog.set_level(logging.INFO, logger="authserver")
    assert_oauth_error(token(http, billing, header), 401, "invalid_client")
    (reason,) = refusal_reasons(caplog)
    assert reason.startswith("tls_client_auth: "), reason


@pytest.mark.parametrize("count", [9, 50])
def test_a_chain_of_too_many_certificates_is_refused(http, billing, root, caplog, count):
    intermediates = [root]
    for index in range(count):
        intermediates.append(pki.make_ca(f"level {index}", issuer=intermediates[-1]))
    certificate = pki.issue(intermediates[-1], dns=["billing.example.com"])
    caplog.set_level(logging.INFO, logger="authserver")
    chain = cert_chain(*reversed(intermediates[1:]))
    assert_oauth_error(token(http, billing, certificate, chain=chain), 401, "invalid_client")
    assert refusal_reasons(caplog) == ["tls_client_auth: certificate chain longer than 8"]


def test_a_malformed_chain_is_invalid_client(http, billing, root):
    certificate = pki.issue(root, dns=["billing.example.com"])
    for chain in ("garbage", ":AAAA:", "(:AAAA:)"):
        assert_oauth_error(token(http, billing, certificate, chain=chain), 401, "invalid_client")


def test_a_url_encoded_pem_that_is_not_one_is_invalid_client(http, billing, settings):
    settings.MTLS_CLIENT_CERT_HEADER = "X-SSL-Client-Cert"
    for value in ("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----", "%ZZ", "x" * 70000):
        assert_oauth_error(token(http, billing, HTTP_X_SSL_CLIENT_CERT=value), 401, "invalid_client")


def test_metadata_lists_the_mtls_methods_and_binding(http):
    metadata = json.loads(http.get("/.well-known/oauth-authorization-server").content)
    for endpoint in ("token", "introspection", "revocation"):
        methods = metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(methods)
    assert metadata["tls_client_certificate_bound_access_tokens"] is True


# --- registering mTLS clients: management API, admin, createclient -------------------------------


@pytest.fixture
def writer(http: Any, make_client: Any) -> str:
    _, secret = make_client(client_id="ops-bot", allowed_scopes=["clients:write"])
    response = post_token(http, GRANT, authorization=basic("ops-bot", secret))
    return f"Bearer {response.json()['access_token']}"


def api(http: Any, method: str, path: str, body: dict[str, Any], writer: str) -> Any:
    return http.generic(method, path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=writer)


def test_the_api_registers_a_tls_client_auth_client_without_a_secret(http, writer, root):
    response = api(http, "POST", "/client", {
        "client_id": "billing", "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_dns": "billing.example.com",
    }, writer)
    assert response.status_code == 201, response.content
    data = response.json()
    assert "client_secret" not in data and data["secrets"] == []
    assert data["tls_client_auth_san_dns"] == "billing.example.com"
    assert data["tls_client_certificate_bound_access_tokens"] is True  # the default for mTLS methods
    certificate = pki.issue(root, dns=["billing.example.com"])
    bound_claims(http, token(http, "billing", certificate), certificate)
    # RFC 8705 names, changed like any other setting.
    changed = api(http, "PATCH", "/client/billing", {"tls_client_auth_san_dns": "",
                                                       "tls_client_auth_san_uri": "spiffe://example.com/billing"},
                  writer)
    assert changed.status_code == 200, changed.content
    assert_oauth_error(token(http, "billing", certificate), 401, "invalid_client")


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, "tls_client_auth_subject_dn", "exactly one of"),
    ({"tls_client_auth_san_dns": "a.example.com", "tls_client_auth_san_ip": "192.0.2.1"},
     "tls_client_auth_san_ip", "exactly one of"),
    ({"tls_client_auth_san_ip": "192.0.2.300"}, "tls_client_auth_san_ip", "IPv4 or IPv6"),
    ({"tls_client_auth_subject_dn": "not a dn"}, "tls_client_auth_subject_dn", "RFC 4514"),
    ({"tls_client_auth_san_email": "nobody"}, "tls_client_auth_san_email", "email"),
])
def test_the_api_refuses_a_tls_client_auth_client_without_exactly_one_valid_subject(
    http, writer, body, field, message
):
    response = api(http, "POST", "/client", {"client_id": "billing", "token_endpoint_auth_method": "tls_client_auth",
                                             **body}, writer)
    assert response.status_code == 400, response.content
    errors = response.json()
    assert message in " ".join(errors[field]), errors


def test_the_api_registers_a_self_signed_client_by_its_certificates(http, writer, root):
    certificate = pki.self_signed()
    keys = jwk_with_certificate(certificate)
    response = api(http, "POST", "/client", {"client_id": "edge", "jwks": keys,
                                             "token_endpoint_auth_method": "self_signed_tls_client_auth"}, writer)
    assert response.status_code == 201, response.content
    assert "client_secret" not in response.json()
    bound_claims(http, token(http, "edge", certificate), certificate)


@pytest.mark.parametrize("case", ["no x5c", "x5c of another key", "x5c not base64", "x5c not a certificate",
                                  "x5c empty"])
def test_the_api_refuses_a_self_signed_client_without_usable_certificates(http, writer, case):
    mine, other = pki.self_signed(), pki.self_signed()
    (key,) = jwk_with_certificate(mine)["keys"]
    key = {
        "no x5c": {k: v for k, v in key.items() if k != "x5c"},
        "x5c of another key": {**key, "x5c": jwk_with_certificate(other)["keys"][0]["x5c"]},
        "x5c not base64": {**key, "x5c": ["not base64!"]},
        "x5c not a certificate": {**key, "x5c": [base64.b64encode(b"nope").decode()]},
        "x5c empty": {**key, "x5c": []},
    }[case]
    response = api(http, "POST", "/client", {"client_id": "edge", "jwks": {"keys": [key]},
                                             "token_endpoint_auth_method": "self_signed_tls_client_auth"}, writer)
    assert response.status_code == 400, response.content
    assert "jwks" in response.json()


def test_the_admin_shows_a_pasted_certificate_by_subject_sans_expiry_and_thumbprint(admin_client, http, root):
    from clients.models import Client
    from tests.test_admin import ADD, form_data

    certificate = pki.self_signed(subject="CN=edge device 7,O=Example", dns=["edge7.example.com"])
    response = admin_client.post(ADD, form_data(
        client_id="edge", token_endpoint_auth_method="self_signed_tls_client_auth", jwks=certificate.pem().decode(),
        tls_client_certificate_bound_access_tokens="on",  # as the page ticks it for this method
    ))
    assert response.status_code == 302, response.content[:3000]  # no reveal page: there is no secret
    client = Client.objects.get(client_id="edge")
    assert not client.secrets.exists()
    page = admin_client.get(f"/admin/clients/client/{client.pk}/change/").content.decode()
    section = page[page.index('class="registered-certificates"'):]
    section = section[:section.index("</table>")]
    assert "CN=edge device 7,O=Example" in section
    assert "DNS:edge7.example.com" in section
    assert f"{certificate.certificate.not_valid_after_utc:%Y-%m-%d}" in section
    assert thumbprint(certificate.certificate) in section
    bound_claims(http, token(http, "edge", certificate), certificate)


def test_the_admin_registers_a_tls_client_auth_client(admin_client, http, root):
    from clients.models import Client
    from tests.test_admin import ADD, form_data

    response = admin_client.post(ADD, form_data(
        client_id="billing", token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_subject_dn="CN=billing,O=Example", tls_client_certificate_bound_access_tokens="on",
    ))
    assert response.status_code == 302, response.content[:3000]
    assert Client.objects.get(client_id="billing").tls_client_auth_subject_dn == "CN=billing,O=Example"
    certificate = pki.issue(root, subject="CN=billing,O=Example")
    bound_claims(http, token(http, "billing", certificate), certificate)
    refused = admin_client.post(ADD, form_data(client_id="two", token_endpoint_auth_method="tls_client_auth"))
    assert refused.status_code == 200
    assert "exactly one of" in str(refused.context["adminform"].form.errors)


def test_createclient_registers_an_mtls_client(db, http, root):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("createclient", "billing", "--client-id", "billing", "--auth-method", "tls_client_auth",
                 "--tls-san-dns", "billing.example.com", stdout=out)
    assert "no secret" in out.getvalue()
    certificate = pki.issue(root, dns=["billing.example.com"])
    bound_claims(http, token(http, "billing", certificate), certificate)


def test_a_verified_chain_is_remembered_within_its_minute_but_its_expiry_is_checked_each_time(
    make_client, root, monkeypatch
):
    from clients import registry
    from tokens import mtls

    make_client(client_id="billing", token_endpoint_auth_method="tls_client_auth",
                tls_client_auth_san_dns="billing.example.com")
    record = registry.client("billing")
    minute = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 60 * 60, UTC)
    certificate = pki.issue(root, dns=["billing.example.com"], not_after=minute + timedelta(seconds=40))
    presented = mtls.PresentedCertificate(certificate.certificate)
    built = []
    real = mtls._verifier
    monkeypatch.setattr(mtls, "_verifier", lambda store, now: built.append(now) or real(store, now))
    mtls.authenticate(record, presented, now=minute + timedelta(seconds=5))
    mtls.authenticate(record, presented, now=minute + timedelta(seconds=30))
    assert len(built) == 1  # the second request of the minute reuses the verified chain
    with pytest.raises(mtls.CertificateRejected, match="expired"):
        mtls.authenticate(record, presented, now=minute + timedelta(seconds=45))
    with pytest.raises(mtls.CertificateRejected, match="certificate chain"):
        mtls.authenticate(record, presented, now=minute + timedelta(seconds=65))  # the next minute checks afresh
    assert len(built) == 2
