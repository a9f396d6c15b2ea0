"""Mutual-TLS client authentication and certificate-bound tokens (RFC 8705; DESIGN §9.4).

authserver sits behind a TLS-terminating proxy, which hands on the certificate the client
presented in its handshake (and so proved it holds the private key of):

- RFC 9440: ``Client-Cert`` (a structured-field byte sequence of the DER certificate) and,
  optionally, ``Client-Cert-Chain`` (a list of them, the intermediates);
- or, with ``MTLS_CLIENT_CERT_HEADER``, that header holding the URL-encoded PEM certificate
  (nginx's ``$ssl_client_escaped_cert``).

Either is believed only when the direct peer is one of ``TRUSTED_PROXIES``; from anyone else
it is ignored, as if no certificate had been sent.  Then:

- ``tls_client_auth`` (§2.1): the certificate is valid now and chains to a CA of
  ``MTLS_TRUSTED_CA_FILE`` (checked here with ``cryptography``'s X.509 verification, whatever
  the proxy checked), and carries the one subject value the client registered (§2.1.2);
- ``self_signed_tls_client_auth`` (§2.2): the certificate is one of the ``x5c`` certificates
  of the client's JWK Set, and no chain is built.

A token issued over a certificate may carry its ``x5t#S256`` thumbprint in ``cnf`` (§3), and
is then only accepted together with that certificate.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import http_sf
from cryptography import x509
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from django.conf import settings
from django.http import HttpRequest

from clients.certificates import SUBJECT_FIELDS, InvalidCertificate, carries, load_der, load_pem, thumbprint
from clients.models import TokenEndpointAuthMethod
from clients.registry import ClientRecord
from tokens import private_key_jwt
from tokens.addresses import from_trusted_proxy

TLS_CLIENT_AUTH = TokenEndpointAuthMethod.TLS_CLIENT_AUTH.value
SELF_SIGNED_TLS_CLIENT_AUTH = TokenEndpointAuthMethod.SELF_SIGNED_TLS_CLIENT_AUTH.value
METHODS = frozenset({TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH})
# Intermediates a proxy may forward, and how long a chain may grow to a trusted CA.
MAX_CHAIN = 8
MAX_HEADER_BYTES = 64 * 1024


class CertificateRejected(Exception):
    """The certificate does not prove the client; ``reason`` is for the log (no certificate material)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ForwardedCertificate:
    """The certificate headers as a trusted proxy sent them, not yet read."""

    certificate: str
    chain: str | None = None
    url_encoded_pem: bool = False  # MTLS_CLIENT_CERT_HEADER, else RFC 9440


@dataclass(frozen=True)
class PresentedCertificate:
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    thumbprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thumbprint", thumbprint(self.certificate))


def _meta_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def forwarded_certificate(request: HttpRequest) -> ForwardedCertificate | None:
    """The client certificate headers of ``request`` if a trusted proxy sent them, else ``None``."""
    if not from_trusted_proxy(request):
        return None
    header = settings.MTLS_CLIENT_CERT_HEADER
    value = request.META.get(_meta_name(header or "Client-Cert"), "").strip()
    if not value:
        return None  # nginx sends the header empty when the client presented no certificate
    if header:
        return ForwardedCertificate(certificate=value, url_encoded_pem=True)
    return ForwardedCertificate(certificate=value, chain=request.META.get("HTTP_CLIENT_CERT_CHAIN"))


def _byte_sequences(value: str, *, list_: bool) -> list[bytes]:
    """RFC 9440 §2: ``Client-Cert`` is one sf-binary, ``Client-Cert-Chain`` a list of them."""
    if len(value) > MAX_HEADER_BYTES:
        raise CertificateRejected("certificate header too large")
    try:
        parsed: Any = http_sf.parse(value.encode("latin-1"), tltype="list" if list_ else "item")
    except (http_sf.StructuredFieldError, UnicodeEncodeError):
        raise CertificateRejected("certificate header is not a structured-field byte sequence") from None
    members = parsed if list_ else [parsed]
    if len(members) > MAX_CHAIN:
        raise CertificateRejected(f"certificate chain longer than {MAX_CHAIN}")
    # Each member is (value, parameters); an inner list or any other type is not a certificate.
    sequences = [member[0] for member in members if isinstance(member, tuple) and isinstance(member[0], bytes)]
    if len(sequences) != len(members):
        raise CertificateRejected("certificate header is not a structured-field byte sequence")
    return sequences


@functools.lru_cache(maxsize=256)
def read(forwarded: ForwardedCertificate) -> PresentedCertificate:
    """The certificate (and chain) the proxy forwarded; ``CertificateRejected`` when unreadable.

    Parsed once per process for each header value (a client sends the same one every time)."""
    try:
        if forwarded.url_encoded_pem:
            if len(forwarded.certificate) > MAX_HEADER_BYTES:
                raise CertificateRejected("certificate header too large")
            return PresentedCertificate(load_pem(unquote(forwarded.certificate)))
        (der,) = _byte_sequences(forwarded.certificate, list_=False)
        chain = _byte_sequences(forwarded.chain, list_=True) if forwarded.chain else []
        return PresentedCertificate(load_der(der), tuple(load_der(item) for item in chain))
    except InvalidCertificate as error:
        raise CertificateRejected(f"unreadable client certificate: {error}") from None


@functools.lru_cache(maxsize=4)
def _trust_store(path: str, mtime: float) -> Store | None:
    del mtime  # part of the cache key: a replaced file is read again
    try:
        with open(path, "rb") as file:
            roots = x509.load_pem_x509_certificates(file.read())
    except (OSError, ValueError):
        return None
    return Store(roots)


def trust_store() -> Store | None:
    """The CAs of ``MTLS_TRUSTED_CA_FILE`` (read again when the file changes); ``None`` if unusable."""
    path = settings.MTLS_TRUSTED_CA_FILE
    if not path:
        return None
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    return _trust_store(path, mtime)


def _verifier(store: Store, now: datetime) -> ClientVerifier:
    # The Web PKI's end-entity policy demands a SAN; RFC 8705 §2.1.2 also names clients by
    # subject DN alone, so a leaf may lack one (its other checks stay).
    leaf_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    return (
        PolicyBuilder().store(store).time(now).max_chain_depth(MAX_CHAIN)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy)
        .build_client_verifier()
    )


# Chains that verified, with when the first of their certificates expires, for the rest of the
# minute they verified in: a client sends the same certificate every time, and building and
# checking its chain is most of an mTLS request's cost.  A memo of a pure function of the
# certificates, the trust store and the time (the expiry is checked on every request), never
# security state; failures are not kept, so a certificate that becomes valid passes at once.
_verified: dict[tuple[Store, PresentedCertificate, int], datetime] = {}
_MAX_VERIFIED = 1024


def _check_chain(presented: PresentedCertificate, now: datetime) -> None:
    store = trust_store()
    if store is None:
        raise CertificateRejected("MTLS_TRUSTED_CA_FILE is not set or holds no certificate")
    key = (store, presented, int(now.timestamp()) // 60)
    expires = _verified.get(key)
    if expires is None:
        try:
            chain = _verifier(store, now).verify(presented.certificate, list(presented.chain)).chain
        except VerificationError as error:
            raise CertificateRejected(f"certificate chain: {str(error)[:200]}") from None
        expires = min(certificate.not_valid_after_utc for certificate in chain)
        if len(_verified) >= _MAX_VERIFIED:
            _verified.clear()
        _verified[key] = expires
    if now > expires:
        raise CertificateRejected("certificate chain: a certificate has expired")


def registered_subject(client: ClientRecord) -> tuple[str, str] | None:
    """The one (field, value) of RFC 8705 §2.1.2 the client registered, or ``None``."""
    registered = [(name, getattr(client, name)) for name in SUBJECT_FIELDS if getattr(client, name)]
    return registered[0] if len(registered) == 1 else None


def authenticate(client: ClientRecord, presented: PresentedCertificate | None, *, now: datetime) -> None:
    """Check that ``presented`` proves ``client`` by its mTLS method; raises ``CertificateRejected``
    (or ``private_key_jwt.KeysUnavailable`` when a self-signed client's ``jwks_uri`` is down)."""
    if presented is None:
        raise CertificateRejected("no client certificate")
    if client.token_endpoint_auth_method == TLS_CLIENT_AUTH:
        _check_chain(presented, now)
        subject = registered_subject(client)
        if subject is None:
            raise CertificateRejected("client has no single registered certificate subject")
        name, value = subject
        if not carries(presented.certificate, name, value):
            raise CertificateRejected(f"certificate does not carry the registered {name}")
    elif client.token_endpoint_auth_method == SELF_SIGNED_TLS_CLIENT_AUTH:
        keys = private_key_jwt.client_keys(client, kid=None)
        if not any(key.certificate_thumbprint == presented.thumbprint for key in keys):
            raise CertificateRejected("certificate is none of the client's registered certificates")
    else:
        raise CertificateRejected(f"client does not use {TLS_CLIENT_AUTH}")


def bound_thumbprint(client: ClientRecord, forwarded: ForwardedCertificate | None) -> str | None:
    """RFC 8705 §3.1: the ``x5t#S256`` a token of ``client`` is bound to, or ``None`` when the
    client's tokens are not certificate-bound.  Raises ``CertificateRejected`` when they must be
    and the request carried no readable certificate."""
    if not client.tls_client_certificate_bound_access_tokens:
        return None
    if forwarded is None:
        raise CertificateRejected("no client certificate")
    return read(forwarded).thumbprint
