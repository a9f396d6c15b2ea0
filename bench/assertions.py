"""``private_key_jwt`` client assertions (RFC 7523 §2.2, §3) and workload tokens (federation,
DESIGN §9.2) for the benchmark.

One EC P-256 key per server, made in setup; its public half is the client's JWK Set. Every
assertion is an ES256 JWS with ``iss`` = ``sub`` = the client id, ``aud`` = the server's
ISSUER, ``iat`` now, ``exp`` ``LIFETIME_SECONDS`` later and a ``jti`` of its own (a random
prefix per signer and a serial number), since the server accepts each one once.  Signing is
``cryptography`` directly (well under 0.1 ms an assertion), never inside a timed run.

A workload token (``WorkloadTokenIssuer``) is a Kubernetes service-account token from a
cluster the server trusts with a static JWK Set; it is reusable until it expires, so one made
in setup is sent by every request.

A DPoP proof (``DPoPProver``, RFC 9449 §4.2) is an ES256 JWS with ``typ: dpop+jwt`` and the
client's EC P-256 public key in its ``jwk`` header, claims ``jti`` (unique: a random prefix per
prover and a serial number, since the server records each), ``htm`` POST, ``htu`` the token
endpoint under the server's ISSUER and ``iat`` now.  The server accepts a proof only while its
``iat`` is within ``DPOP_IAT_WINDOW_SECONDS`` of its own clock, so proofs are signed right before
each wrk run (still never inside it).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Long enough for any one wrk run and well under the server's CLIENT_ASSERTION_MAX_LIFETIME (1 h).
LIFETIME_SECONDS = 1800
KID = "bench-es256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode("ascii"))


class AssertionSigner:
    """Signs one client's assertions; no two it makes share a ``jti``."""

    def __init__(self, client_id: str, audience: str) -> None:
        self.client_id = client_id
        self.audience = audience
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._header = _json_b64({"alg": "ES256", "kid": KID})
        self._jti_prefix = secrets.token_hex(8)
        self._serial = itertools.count(1)

    def write_jwks(self, path: Path) -> Path:
        """The client's JWK Set (its public key only), for ``createclient --jwks-file``."""
        numbers = self._key.public_key().public_numbers()
        key = {
            "kty": "EC", "crv": "P-256", "kid": KID, "use": "sig", "alg": "ES256",
            "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        path.write_text(json.dumps({"keys": [key]}) + "\n")
        return path

    def assertion(self, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self.client_id, "sub": self.client_id, "aud": self.audience,
            "iat": issued, "exp": issued + LIFETIME_SECONDS, "jti": f"{self._jti_prefix}-{next(self._serial)}",
        }
        signing_input = f"{self._header}.{_json_b64(claims)}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def body(self, form: str, now: int | None = None) -> str:
        """``form`` (grant type, scope) with a fresh client assertion (RFC 7521 §4.2)."""
        return (f"{form}&client_assertion_type={quote(ASSERTION_TYPE, safe='')}"
                f"&client_assertion={self.assertion(now)}")


# --- workload identity federation (DESIGN §9.2) ------------------------------------------

WORKLOAD_ISSUER = "https://cluster.bench.invalid"
WORKLOAD_NAMESPACE = "payments"
WORKLOAD_SERVICE_ACCOUNT = "api"
# A projected service-account token's usual lifetime; the server accepts it again and again
# until then (no jti check), so one token made in setup serves every run.
WORKLOAD_LIFETIME_SECONDS = 3600


class WorkloadTokenIssuer:
    """Plays a Kubernetes cluster's service-account issuer: one signing key (RSA 2048 and RS256,
    Kubernetes' default, or EC P-256 and ES256), its public half a static JWK Set, and tokens
    shaped like a projected service-account token (``iss``, ``sub``
    ``system:serviceaccount:NS:NAME``, ``aud`` a list, ``iat``/``nbf``/``exp``, ``kubernetes.io``)."""

    def __init__(self, audience: str, *, alg: str = "RS256", issuer: str = WORKLOAD_ISSUER) -> None:
        if alg not in ("RS256", "ES256"):
            raise ValueError(f"unsupported alg {alg}")
        self.alg = alg
        self.issuer = issuer
        self.audience = audience
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.kid = _b64(secrets.token_bytes(32))  # kube-apiserver's kid: a base64url SHA-256 of the key

    def jwks(self) -> dict[str, object]:
        """The cluster's JWK Set, as ``/openid/v1/jwks`` serves it (public keys only)."""
        public = self._key.public_key()
        key: dict[str, object] = {"use": "sig", "kid": self.kid, "alg": self.alg}
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            key |= {"kty": "RSA", "n": _b64(numbers.n.to_bytes(256, "big")), "e": _b64(numbers.e.to_bytes(3, "big"))}
        else:
            point = public.public_numbers()
            key |= {"kty": "EC", "crv": "P-256",
                    "x": _b64(point.x.to_bytes(32, "big")), "y": _b64(point.y.to_bytes(32, "big"))}
        return {"keys": [key]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()) + "\n")
        return path

    def token(self, *, namespace: str = WORKLOAD_NAMESPACE, service_account: str = WORKLOAD_SERVICE_ACCOUNT,
              now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "aud": [self.audience], "exp": issued + WORKLOAD_LIFETIME_SECONDS, "iat": issued, "iss": self.issuer,
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "bench-node-1", "uid": str(uuid.uuid4())},
                "pod": {"name": f"{service_account}-7d9f8b6c5d-x2k4q", "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
                "warnafter": issued + 3000,
            },
            "nbf": issued, "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        signing_input = f"{_json_b64({'alg': self.alg, 'kid': self.kid})}.{_json_b64(claims)}".encode("ascii")
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input.decode('ascii')}.{_b64(signature)}"

    def body(self, form: str, client_id: str, token: str) -> str:
        """``form`` with ``client_id`` and the workload's token as a jwt-bearer client assertion."""
        return (f"{form}&client_id={quote(client_id, safe='')}"
                f"&client_assertion_type={quote(ASSERTION_TYPE, safe='')}&client_assertion={token}")


# --- DPoP proofs (RFC 9449) --------------------------------------------------------------

# The server's IAT_WINDOW_SECONDS (tokens/dpop.py): a proof is accepted while |now - iat| <= 60 s.
DPOP_IAT_WINDOW_SECONDS = 60


class DPoPProver:
    """One client's DPoP key (EC P-256, ES256) and its proofs for ``POST url``; no two share a ``jti``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256",
               "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}
        self._header = _json_b64({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})
        self._jti_prefix = secrets.token_hex(8)
        self._serial = itertools.count(1)

    def proof(self, now: int | None = None) -> str:
        """A fresh proof, the value of one request's ``DPoP`` header."""
        issued = int(time.time()) if now is None else now
        claims = {"jti": f"{self._jti_prefix}-{next(self._serial)}", "htm": "POST", "htu": self.url, "iat": issued}
        signing_input = f"{self._header}.{_json_b64(claims)}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
