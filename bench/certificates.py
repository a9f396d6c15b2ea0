"""A client certificate for the ``mtls`` row (``tls_client_auth``, RFC 8705 §2.1).

One CA (EC P-256, self-signed; the server trusts it through ``MTLS_TRUSTED_CA_FILE``) and one
client certificate it issues, made in setup: SAN DNS ``CLIENT_SAN_DNS`` (the subject value the
client registers, RFC 8705 §2.1.2), the clientAuth extended key usage, valid from an hour ago
for a day.  Both carry what the server's strict verifier (``cryptography``'s X.509 client
verification, Web PKI policies) demands: BasicConstraints and KeyUsage, critical, and Subject
and Authority Key Identifiers.

Every request sends the certificate as a TLS-terminating proxy forwards it, RFC 9440's
``Client-Cert``: the DER certificate as a structured-field byte sequence (``:base64:``).  A
token issued over it is bound to it (RFC 8705 §3.1): ``cnf`` holds its ``x5t#S256``, which
``payload_needles`` lets the wrk script find in every token without decoding it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_SAN_DNS = "bench-client.example"
VALIDITY = timedelta(days=1)


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=key_cert_sign,
        encipher_only=False, decipher_only=False,
    )


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, *, issuer: x509.Name | None,
                 signer: ec.EllipticCurvePrivateKey, extensions: list[tuple[x509.ExtensionType, bool]]
                 ) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


class ClientCertificate:
    """A CA and the client certificate it issued for ``dns``, as the bench client presents it."""

    def __init__(self, dns: str = CLIENT_SAN_DNS) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _certificate("authserver bench CA", ca_key, issuer=None, signer=ca_key, extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(key_cert_sign=True), True),
        ])
        self.certificate = _certificate("bench client", ec.generate_private_key(ec.SECP256R1()),
                                        issuer=self.ca.subject, signer=ca_key, extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(digital_signature=True), True),
            (x509.SubjectAlternativeName([x509.DNSName(dns)]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ])
        self.dns = dns

    def write_ca(self, path: Path) -> Path:
        """The CA certificate (PEM), for ``MTLS_TRUSTED_CA_FILE``."""
        path.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        return path

    def header(self) -> str:
        """The ``Client-Cert`` header value (RFC 9440 §2.1): ``:`` standard base64 of the DER ``:``."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return f":{base64.b64encode(der).decode('ascii')}:"

    @property
    def thumbprint(self) -> str:
        """``x5t#S256`` (RFC 8705 §3.1): base64url SHA-256 of the DER certificate, unpadded."""
        digest = hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def cnf_claim(self) -> bytes:
        """``"cnf":{"x5t#S256":"..."}`` as the server writes it in a token's JSON payload (compact)."""
        return b'"cnf":' + json.dumps({"x5t#S256": self.thumbprint}, separators=(",", ":")).encode("ascii")


def payload_needles(text: bytes) -> tuple[str, ...]:
    """What a base64url JWT segment holds when its decoded JSON holds ``text``: one string per
    offset of ``text`` modulo 3, the characters that encode ``text``'s bytes alone.  The segment
    holds at least one of them, so a plain substring search checks a claim without decoding."""
    needles = []
    for offset in range(3):
        encoded = base64.urlsafe_b64encode(bytes(offset) + text).rstrip(b"=").decode("ascii")
        # Characters are 6 bits: drop those that also carry the offset's bytes or what follows.
        needles.append(encoded[-(-8 * offset // 6):8 * (offset + len(text)) // 6])
    return tuple(needles)
