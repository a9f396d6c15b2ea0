"""A client's public keys: JWK Sets (RFC 7517 §5) registered as ``jwks`` or served at ``jwks_uri``.

Keys sign client assertions (``private_key_jwt``, RFC 7523 §2.2) and workload tokens of
trusted issuers, so only asymmetric signing keys are kept: EC P-256 and P-384, RSA of at
least 2048 bits, and Ed25519.  A set holding a private key is refused outright (its
owner has leaked it to us), and so is a symmetric key.  A registered set is checked
strictly (each key must be usable); a fetched one keeps the usable keys and skips the
rest (an issuer's set may hold encryption keys too).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from clients import certificates

AnyPublicKey = ECKey | RSAKey | OKPKey

# The JWS algorithms a client or issuer may sign with (DESIGN §9.1): never "none", never HMAC.
SIGNING_ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
_CURVE_ALGORITHMS = {"P-256": ("ES256",), "P-384": ("ES384",), "Ed25519": ("EdDSA",)}
_RSA_ALGORITHMS = ("PS256", "RS256")
MIN_RSA_BITS = 2048
MAX_KEYS = 20
MAX_JWKS_BYTES = 64 * 1024
# RFC 7517 §4.1 / RFC 7518 §6: members only a private (or symmetric) key has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_CLASSES: dict[str, type[AnyPublicKey]] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}


class InvalidKeySet(ValueError):
    """The value is not a JWK Set of public signing keys; the message says why (no key material)."""


@dataclass(frozen=True)
class PublicKey:
    """One usable key of a set: its ``kid`` (may be ``None``), the algorithms it fits, the key."""

    kid: str | None
    algorithms: tuple[str, ...]
    key: AnyPublicKey
    thumbprint: str  # RFC 7638, SHA-256, base64url
    # RFC 8705 §3.1 x5t#S256 of the key's own certificate (the first of its x5c), if it has one.
    certificate_thumbprint: str | None = None

    @property
    def kind(self) -> str:
        data = self.key.as_dict(private=False)
        if data["kty"] == "RSA":
            return f"RSA {self.key.raw_value.key_size}"  # type: ignore[union-attr]
        return f"{data['kty']} {data['crv']}"


def _algorithms(data: dict[str, Any]) -> tuple[str, ...]:
    kty = data.get("kty")
    if kty == "RSA":
        return _RSA_ALGORITHMS
    if kty in ("EC", "OKP"):
        return _CURVE_ALGORITHMS.get(str(data.get("crv")), ())
    return ()


def _key(data: object, index: int) -> PublicKey:
    """Key ``index`` of a set as a ``PublicKey``; ``InvalidKeySet`` when it is not one we can use."""
    where = f"key {index + 1}"
    if not isinstance(data, dict):
        raise InvalidKeySet(f"{where} is not a JSON object.")
    if PRIVATE_MEMBERS & set(data):
        raise InvalidKeySet(f"{where} is a private or symmetric key; register public keys only.")
    kty = data.get("kty")
    if kty not in _KEY_CLASSES:
        raise InvalidKeySet(f"{where}: kty must be EC, RSA or OKP.")
    algorithms = _algorithms(data)
    if not algorithms:
        raise InvalidKeySet(f"{where}: the curve must be P-256, P-384 or Ed25519.")
    kid = data.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 200):
        raise InvalidKeySet(f"{where}: kid must be a non-empty string.")
    # SPIFFE trust bundles mark JWT-SVID keys "jwt-svid" (SPIFFE Trust Domain and Bundle §4.2.2).
    if data.get("use", "sig") not in ("sig", "jwt-svid"):
        raise InvalidKeySet(f"{where}: use must be sig.")
    alg = data.get("alg")
    alg = "EdDSA" if alg == "Ed25519" else alg  # RFC 9864's fully-specified name for the same
    if alg is not None:
        if alg not in algorithms:
            raise InvalidKeySet(f"{where}: alg must be one of {', '.join(algorithms)} for this key.")
        algorithms = (alg,)
    try:
        # joserfc knows only RFC 7517's "use" values; the check above has read it already.
        key = _KEY_CLASSES[kty].import_key({name: value for name, value in data.items() if name != "use"})
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise InvalidKeySet(f"{where} is not a valid {kty} public key.") from error
    if kty == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:  # type: ignore[union-attr]
        raise InvalidKeySet(f"{where}: an RSA key must have at least {MIN_RSA_BITS} bits.")
    certificate = _certificate(data, key, where) if "x5c" in data else None
    # RFC 7638 over the required members only (joserfc's ``thumbprint()`` function hashes every
    # member it is given, kid and alg included; the key's own method does it right).
    return PublicKey(kid=kid, algorithms=algorithms, key=key, thumbprint=key.thumbprint(),
                     certificate_thumbprint=certificates.thumbprint(certificate) if certificate else None)


def _certificate(data: dict[str, Any], key: AnyPublicKey, where: str) -> x509.Certificate:
    """The first certificate of a key's ``x5c``, which RFC 7517 §4.7 says MUST hold that key."""
    try:
        certificate = certificates.x5c_certificates(data["x5c"])[0]
    except certificates.InvalidCertificate as error:
        raise InvalidKeySet(f"{where}: {error}") from None
    if certificate.public_key() != key.raw_value:
        raise InvalidKeySet(f"{where}: the first x5c certificate holds another key (RFC 7517 §4.7).")
    return certificate


def parse_key_set(value: object, *, strict: bool = True) -> tuple[PublicKey, ...]:
    """The usable keys of the JWK Set ``value`` (a dict or its JSON text).

    ``strict`` (a registered set): every key must be usable, ``kid``s unique, at least one
    key.  Otherwise (a fetched set) unusable keys are skipped.  A private key is refused
    either way.  Raises ``InvalidKeySet``.
    """
    if isinstance(value, str | bytes):
        if len(value) > MAX_JWKS_BYTES:
            raise InvalidKeySet("The JWK Set is larger than 64 KiB.")
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidKeySet("The JWK Set is not JSON.") from None
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise InvalidKeySet('A JWK Set is a JSON object with a "keys" array (RFC 7517 §5).')
    members = value["keys"]
    if any(isinstance(data, dict) and PRIVATE_MEMBERS & set(data) for data in members):
        raise InvalidKeySet("The JWK Set holds a private or symmetric key; only public keys belong in it.")
    if strict and not members:
        raise InvalidKeySet("The JWK Set holds no key.")
    if strict and len(members) > MAX_KEYS:
        raise InvalidKeySet(f"A JWK Set may hold at most {MAX_KEYS} keys.")
    keys: list[PublicKey] = []
    for index, data in enumerate(members):
        try:
            keys.append(_key(data, index))
        except InvalidKeySet:
            if strict:
                raise
    if strict:
        kids = [key.kid for key in keys if key.kid is not None]
        if len(kids) != len(set(kids)):
            raise InvalidKeySet("Two keys of the set share a kid.")
    return tuple(keys[:MAX_KEYS])


def validate_jwks(value: object) -> None:
    """Model validator for ``Client.jwks``: null, or a JWK Set of public signing keys."""
    from django.core.exceptions import ValidationError

    if value is None:
        return
    try:
        parse_key_set(value)
    except InvalidKeySet as error:
        raise ValidationError(str(error), code="invalid_jwks") from None


def validate_issuer_jwks(value: object) -> None:
    """Model validator for ``TrustedIssuer.jwks``: null, or a JWK Set (a trust bundle may also
    hold keys of other uses, which are skipped) with no private key and a usable one."""
    from django.core.exceptions import ValidationError

    if value is None:
        return
    try:
        usable = parse_key_set(value, strict=False)
    except InvalidKeySet as error:
        raise ValidationError(str(error), code="invalid_jwks") from None
    if not usable:
        raise ValidationError("The JWK Set holds no usable signing key.", code="invalid_jwks")


def is_loopback_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched for keys, or ``None``: https, or plain http to a loopback host."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "is not a URL"
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https URL"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must be https (plain http only for a loopback host)"
    if parts.username is not None or parts.password is not None or parts.fragment:
        return "must have no credentials and no fragment"
    return None


def validate_https_url(value: str) -> None:
    """Model validator for ``jwks_uri``-like fields; empty means unset."""
    from django.core.exceptions import ValidationError

    if not value:
        return
    problem = url_problem(value)
    if problem:
        raise ValidationError(f"The URL {problem}.", code="invalid_url")


def key_set_from_pem(text: str) -> dict[str, Any]:
    """A JWK Set of the PEM public keys (or certificates' keys) in ``text``, each with its
    RFC 7638 thumbprint as ``kid``; ``InvalidKeySet`` when there are none or one is private."""
    if "PRIVATE KEY" in text:
        raise InvalidKeySet("That is a private key; paste the public key only.")
    blocks = [block for block in text.split("-----END ") if "-----BEGIN " in block]
    keys = []
    for block in blocks:
        begin = block.index("-----BEGIN ")
        label = block[begin + len("-----BEGIN "):].split("-----", 1)[0]
        pem = (block[begin:] + "-----END " + label + "-----\n").encode()
        try:
            certificate = x509.load_pem_x509_certificate(pem) if label == "CERTIFICATE" else None
            public_key: Any = certificate.public_key() if certificate else load_pem_public_key(pem)
        except ValueError:
            raise InvalidKeySet("A PEM block is not a public key or certificate.") from None
        data, print_ = _jwk_of(public_key)
        data["kid"] = print_
        if certificate is not None:
            # Kept whole, for self_signed_tls_client_auth (RFC 8705 §2.2).
            data["x5c"] = [certificates.x5c_of(certificate)]
        keys.append(data)
    if not keys:
        raise InvalidKeySet("No PEM public key found.")
    return {"keys": keys}


def _jwk_of(public_key: Any) -> tuple[dict[str, Any], str]:
    """The JWK of a ``cryptography`` public key, and its RFC 7638 thumbprint."""
    for key_class in _KEY_CLASSES.values():
        try:
            key = key_class.import_key(public_key)
        except (JoseError, ValueError, TypeError):
            continue
        return dict(key.as_dict(private=False)), key.thumbprint()
    raise InvalidKeySet("The PEM key is not an EC, RSA or Ed25519 key.")


def describe(value: object) -> list[tuple[str, str, str]]:
    """(kid, type, thumbprint) of each key of a registered set, for operators; [] if invalid."""
    try:
        keys: Iterable[PublicKey] = parse_key_set(value) if value else ()
    except InvalidKeySet:
        return []
    return [(key.kid or "(none)", key.kind, key.thumbprint) for key in keys]


def describe_certificates(value: object) -> list[certificates.Description]:
    """Each certificate (the first of a key's ``x5c``) of a registered set, for operators."""
    try:
        parse_key_set(value) if value else None
    except InvalidKeySet:
        return []
    members = value.get("keys", []) if isinstance(value, dict) else []
    return [certificates.describe(certificates.x5c_certificates(data["x5c"])[0])
            for data in members if isinstance(data, dict) and "x5c" in data]


def without_certificates(value: Any) -> Any:
    """A JWK Set as the audit trail and its log lines keep it: each ``x5c`` certificate named by
    its ``x5t#S256`` thumbprint, never the certificate itself."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        return value

    def named(data: Any) -> Any:
        if not isinstance(data, dict) or "x5c" not in data:
            return data
        try:
            x5c = [f"x5t#S256:{certificates.thumbprint(c)}" for c in certificates.x5c_certificates(data["x5c"])]
        except certificates.InvalidCertificate:
            x5c = ["(unreadable)"]
        return {**data, "x5c": x5c}

    return {**value, "keys": [named(data) for data in value["keys"]]}
