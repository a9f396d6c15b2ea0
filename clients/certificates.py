"""X.509 client certificates (RFC 8705): reading them, naming what they prove, showing them.

A ``tls_client_auth`` client registers the one subject value its certificate must carry
(RFC 8705 §2.1.2): a subject DN, or a DNS, URI, IP or email SAN.  The values are checked
here when registered and compared here when presented; a DN is compared as a distinguished
name (RFC 4517 §4.2.15: attribute by attribute, strings without regard to case or repeated
spaces), never as raw text.  A ``self_signed_tls_client_auth`` client registers its
certificates as ``x5c`` members of its JWK Set (RFC 7517 §4.7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_X5C = 10


class InvalidCertificate(ValueError):
    """Not a certificate we can read; the message says why (no certificate material)."""


def load_der(data: bytes) -> x509.Certificate:
    if not data or len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidCertificate("The certificate is empty or larger than 16 KiB.")
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InvalidCertificate("The value is not a DER X.509 certificate.") from None


def load_pem(text: str | bytes) -> x509.Certificate:
    data = text.encode() if isinstance(text, str) else text
    if len(data) > 2 * MAX_CERTIFICATE_BYTES:
        raise InvalidCertificate("The certificate is larger than 16 KiB.")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise InvalidCertificate("The value is not a PEM X.509 certificate.") from None


def thumbprint(certificate: x509.Certificate) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (unpadded) SHA-256 of the DER certificate."""
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def x5c_certificates(value: object) -> tuple[x509.Certificate, ...]:
    """The certificates of a JWK's ``x5c`` member (RFC 7517 §4.7: standard base64 DER, the
    key's own certificate first); ``InvalidCertificate`` when it is not such a list."""
    if not isinstance(value, list) or not value or len(value) > MAX_X5C:
        raise InvalidCertificate(f"x5c must be a list of 1 to {MAX_X5C} certificates.")
    certificates = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidCertificate("x5c holds base64 DER certificates (strings).")
        try:
            der = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCertificate("An x5c entry is not standard base64 (RFC 7517 §4.7).") from None
        certificates.append(load_der(der))
    return tuple(certificates)


def x5c_of(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()


# RFC 8705 §2.1.2: the five ways a tls_client_auth client names its certificate.
SUBJECT_FIELDS = (
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
)


def _normal_dn(name: x509.Name) -> tuple[frozenset[tuple[str, str]], ...]:
    """A DN as RFC 4517 distinguishedNameMatch compares it: RDN by RDN, each a set of
    attribute types and values, the values without regard to case or repeated spaces."""
    return tuple(
        frozenset((attribute.oid.dotted_string, " ".join(str(attribute.value).split()).casefold())
                  for attribute in rdn)
        for rdn in name.rdns
    )


# RFC 4514 §3 attribute type names, which are case-insensitive (``cryptography`` reads upper
# case only), with the few more that client certificates carry.
_DN_TYPES = {
    "CN": NameOID.COMMON_NAME, "L": NameOID.LOCALITY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "C": NameOID.COUNTRY_NAME,
    "STREET": NameOID.STREET_ADDRESS, "DC": NameOID.DOMAIN_COMPONENT, "UID": NameOID.USER_ID,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER, "EMAILADDRESS": NameOID.EMAIL_ADDRESS, "E": NameOID.EMAIL_ADDRESS,
}
_DN_TYPE_NAMES = {
    spelling: oid for name, oid in _DN_TYPES.items() for spelling in (name, name.lower(), name.capitalize())
} | {"emailAddress": NameOID.EMAIL_ADDRESS}


def parse_dn(value: str) -> x509.Name:
    """An RFC 4514 string as a name; ``InvalidCertificate`` when it is not one."""
    try:
        name = x509.Name.from_rfc4514_string(value, _DN_TYPE_NAMES)
    except ValueError:
        raise InvalidCertificate("The subject DN is not an RFC 4514 distinguished name.") from None
    if not name.rdns:
        raise InvalidCertificate("The subject DN is empty.")
    return name


def validate_subject_dn(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value:
        try:
            parse_dn(value)
        except InvalidCertificate as error:
            raise ValidationError(str(error), code="invalid_dn") from None


def validate_san_ip(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValidationError("Give one IPv4 or IPv6 address.", code="invalid_ip") from None


def validate_san_email(value: str) -> None:
    from django.core.exceptions import ValidationError

    local, at, domain = value.rpartition("@")
    if value and (not at or not local or not domain or any(c.isspace() for c in value)):
        raise ValidationError("Give one email address (an rfc822Name SAN).", code="invalid_email")


def _sans(certificate: x509.Certificate, kind: type[x509.GeneralName]) -> list[object]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(kind))  # type: ignore[arg-type]


def carries(certificate: x509.Certificate, field: str, registered: str) -> bool:
    """Whether ``certificate`` carries the value a client registered under ``field``
    (one of ``SUBJECT_FIELDS``), compared as RFC 8705 §2.1.2 requires for its kind."""
    if field == "tls_client_auth_subject_dn":
        return _normal_dn(certificate.subject) == _normal_dn(parse_dn(registered))
    if field == "tls_client_auth_san_dns":
        wanted = registered.rstrip(".").casefold()
        return any(str(name).rstrip(".").casefold() == wanted for name in _sans(certificate, x509.DNSName))
    if field == "tls_client_auth_san_uri":
        return registered in _sans(certificate, x509.UniformResourceIdentifier)
    if field == "tls_client_auth_san_ip":
        return ipaddress.ip_address(registered) in _sans(certificate, x509.IPAddress)
    if field == "tls_client_auth_san_email":
        local, _, domain = registered.rpartition("@")
        for name in _sans(certificate, x509.RFC822Name):
            their_local, _, their_domain = str(name).rpartition("@")
            if their_local == local and their_domain.casefold() == domain.casefold():
                return True
        return False
    raise ValueError(f"not a subject field: {field}")


@dataclass(frozen=True)
class Description:
    """What an operator needs to recognise a certificate: never the certificate itself."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    thumbprint: str  # x5t#S256

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer


_SAN_LABELS: dict[type[x509.GeneralName], str] = {
    x509.DNSName: "DNS", x509.UniformResourceIdentifier: "URI", x509.IPAddress: "IP", x509.RFC822Name: "email",
}


def describe(certificate: x509.Certificate) -> Description:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    sans = tuple(f"{_SAN_LABELS.get(type(name), type(name).__name__)}:{name.value}" for name in names)
    return Description(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        sans=sans,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        thumbprint=thumbprint(certificate),
    )
