"""``private_key_jwt`` client assertions (RFC 7523 §2.2, §3) for the benchmark.

One EC P-256 key per server, made in setup; its public half is the client's JWK Set. Every
assertion is an ES256 JWS with ``iss`` = ``sub`` = the client id, ``aud`` = the server's
ISSUER, ``iat`` now, ``exp`` ``LIFETIME_SECONDS`` later and a ``jti`` of its own (a random
prefix per signer and a serial number), since the server accepts each one once.  Signing is
``cryptography`` directly (well under 0.1 ms an assertion), never inside a timed run.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
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
