"""A tiny test PKI: CAs and client or server certificates for the mTLS tests (RFC 8705, RFC 5280).

Every certificate carries what a strict verifier (``cryptography``'s X.509 verification,
a browser-grade TLS stack) demands: BasicConstraints and KeyUsage, both critical, and
Subject and Authority Key Identifiers.  Keys are P-256 unless ``key_type="rsa"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``<name>.pem`` and ``<name>-key.pem`` (mode 0600) into ``directory``."""
        certificate, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        certificate.write_bytes(self.pem())
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem())
        return certificate, key


def make_ca(
    common_name: str = "authserver test root CA",
    *,
    issuer: Issued | None = None,
    path_length: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """A self-signed root CA, or an intermediate CA signed by ``issuer``."""
    return _sign(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        ec.generate_private_key(ec.SECP256R1()),
        issuer=issuer,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_key_usage(key_cert_sign=True, crl_sign=True), True),
        ],
        not_before=not_before,
        not_after=not_after,
    )


def issue(
    issuer: Issued,
    *,
    subject: str = "CN=test client",
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    client_auth: bool = True,
    server_auth: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_type: str = "ec",
) -> Issued:
    """An end-entity certificate signed by ``issuer``; ``subject`` is an RFC 4514 string."""
    names = x509.Name.from_rfc4514_string(subject)
    return _sign(
        names,
        _private_key(key_type),
        issuer=issuer,
        extensions=_end_entity_extensions(
            names, dns=dns, uris=uris, ips=ips, emails=emails, client_auth=client_auth, server_auth=server_auth
        ),
        not_before=not_before,
        not_after=not_after,
    )


def self_signed(
    *,
    subject: str = "CN=self-signed client",
    dns: Sequence[str] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_type: str = "ec",
) -> Issued:
    """A self-signed end-entity client certificate, for ``self_signed_tls_client_auth`` (RFC 8705 §2.2)."""
    names = x509.Name.from_rfc4514_string(subject)
    return _sign(
        names,
        _private_key(key_type),
        issuer=None,
        extensions=_end_entity_extensions(names, dns=dns, client_auth=True),
        not_before=not_before,
        not_after=not_after,
    )


def _sign(
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    issuer: Issued | None,
    extensions: list[tuple[x509.ExtensionType, bool]],
    not_before: datetime | None,
    not_after: datetime | None,
) -> Issued:
    """Sign a certificate for ``key`` with ``issuer``'s key, or with ``key`` itself when ``issuer`` is None."""
    now = datetime.now(UTC).replace(microsecond=0)
    signer = issuer.key if issuer else key
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def _end_entity_extensions(
    subject: x509.Name,
    *,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    client_auth: bool = False,
    server_auth: bool = False,
) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(digital_signature=True), True),
    ]
    names: list[x509.GeneralName] = [
        *(x509.DNSName(name) for name in dns),
        *(x509.UniformResourceIdentifier(uri) for uri in uris),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips),
        *(x509.RFC822Name(email) for email in emails),
    ]
    if names:
        # RFC 5280 §4.2.1.6: the SAN is critical when the subject is empty.
        extensions.append((x509.SubjectAlternativeName(names), not subject))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] * client_auth + [ExtendedKeyUsageOID.SERVER_AUTH] * server_auth
    if usages:
        extensions.append((x509.ExtendedKeyUsage(usages), False))
    return extensions


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")
