"""A real OIDC-style token issuer on 127.0.0.1, for the tests of ``private_key_jwt`` (RFC 7523)
and workload identity federation (DESIGN §9.1, §9.2).

``JwksServer`` is a threaded ``http.server`` on an ephemeral port that serves a JWK Set
(RFC 7517 §5) and signs JWTs with the keys it holds: a client's ``jwks_uri`` for
``private_key_jwt``.  ``WorkloadIssuer`` adds the OpenID discovery document
(``<issuer>/.well-known/openid-configuration``: ``issuer``, ``jwks_uri``) and realistic claims,
and plays a Kubernetes cluster (projected service-account tokens), GitHub Actions (its OIDC
tokens) or a SPIFFE trust domain (JWT-SVIDs, and the bundle as a JWKS).

Both can rotate keys, go down and come back on the same port, set the JWKS ``Cache-Control``,
misbehave as a hostile or broken endpoint would (a redirect, an oversized body, a slow answer,
private keys in the set, a discovery document naming another issuer, an error status), and
count the requests each path got, which is how a test proves caching and the refetch limits.

Keys are made with ``cryptography`` and JWTs signed here by hand (``header.payload.signature``),
so a test controls every header member and the server's JOSE library checks a signature it did
not make.  Use the fixtures (``workload_issuer``, ``make_workload_issuer``, ``jwks_server``; import their
``*_fixture`` functions) or the classes as context managers::

    with WorkloadIssuer(keys=["RS256"]) as cluster:
        token = cluster.kubernetes_token(namespace="payments", service_account="api", audience=ISSUER)
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwk

HOST = "127.0.0.1"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_SPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
MAX_JWKS_BYTES = 64 * 1024  # DESIGN §9.1: a jwks_uri answer larger than this is refused
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"  # what GitHub's `iss` would be

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}
ALGORITHMS = ("ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key, its ``kid`` and the ``alg`` it signs with by default."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, alg: str = "ES256", *, kid: str | None = None) -> SigningKey:
        """A new key for ``alg`` (EC P-256/P-384, RSA 2048, Ed25519); ``kid`` defaults to the
        key's RFC 7638 thumbprint, as Kubernetes and many issuers name their keys."""
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported alg {alg!r}")
        private: PrivateKey
        if alg in _CURVES:
            private = ec.generate_private_key(_CURVES[alg])
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = cls(kid="", alg=alg, private_key=private)
        return cls(kid=kid or key._joserfc().thumbprint(), alg=alg, private_key=private)

    def _joserfc(self) -> jwk.ECKey | jwk.RSAKey | jwk.OKPKey:
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return jwk.ECKey.import_key(self.private_key)
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return jwk.RSAKey.import_key(self.private_key)
        return jwk.OKPKey.import_key(self.private_key)

    def public_jwk(self, *, alg: bool = True, use: str | None = "sig") -> dict[str, Any]:
        """The public JWK (``kid``; ``alg`` and ``use`` unless told not to), as issuers publish it."""
        members = self._joserfc().as_dict(private=False)
        members["kid"] = self.kid
        if alg:
            members["alg"] = self.alg
        if use:
            members["use"] = use
        return members

    def private_jwk(self, *, alg: bool = True) -> dict[str, Any]:
        """The JWK with its private members (``d``; RSA's ``p``, ``q``, ``dp``, ``dq``, ``qi``)."""
        members = self._joserfc().as_dict(private=True)
        members["kid"] = self.kid
        if alg:
            members["alg"] = self.alg
        return members

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def sign(self, data: bytes, alg: str | None = None) -> bytes:
        """The JWS signature (RFC 7518 §3) of ``data`` with ``alg`` (default: the key's own)."""
        alg = alg or self.alg
        private = self.private_key
        if alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
            return private.sign(data)
        digest = _HASHES[alg[2:]]() if alg[:2] in ("ES", "RS", "PS") else None
        if alg.startswith("ES") and digest and isinstance(private, ec.EllipticCurvePrivateKey):
            # RFC 7518 §3.4: R and S as fixed-size big-endian integers, not DER.
            r, s = decode_dss_signature(private.sign(data, ec.ECDSA(digest)))
            size = (private.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg.startswith("RS") and digest and isinstance(private, rsa.RSAPrivateKey):
            return private.sign(data, padding.PKCS1v15(), digest)
        if alg.startswith("PS") and digest and isinstance(private, rsa.RSAPrivateKey):
            # RFC 7518 §3.5: the salt is as long as the hash.
            return private.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        raise ValueError(f"a {type(private).__name__} cannot sign {alg}")

    def mint(
        self, claims: Mapping[str, Any], *, alg: str | None = None,
        header_overrides: Mapping[str, Any] | None = None, signature: bytes | None = None,
    ) -> str:
        """A compact JWS of ``claims``: header ``{"alg", "kid"}`` updated with ``header_overrides``
        (a member set to ``None`` is removed, e.g. ``{"kid": None}``), signed with ``alg``, which
        may differ from the header's ``alg`` on purpose; ``signature`` replaces the signature
        (``b""`` for an unsecured ``"alg": "none"`` JWT)."""
        alg = alg or self.alg
        header: dict[str, Any] = {"alg": alg, "kid": self.kid}
        for name, value in (header_overrides or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
        if signature is None:
            signature = self.sign(signing_input.encode("ascii"), alg)
        return f"{signing_input}.{b64url(signature)}"


def new_key(alg: str = "ES256", *, kid: str | None = None) -> SigningKey:
    return SigningKey.generate(alg, kid=kid)


def jwk_set(*keys: SigningKey, alg: bool = True) -> dict[str, Any]:
    """The public JWK Set of ``keys``, as a client registers it (``jwks``)."""
    return {"keys": [key.public_jwk(alg=alg) for key in keys]}


def client_assertion_claims(
    client_id: str, *, audience: str | list[str], lifetime: int = 60, jti: str | None = None,
    now: int | None = None, **extra: Any,
) -> dict[str, Any]:
    """RFC 7523 §3 / OIDC Core §9 claims: ``iss`` = ``sub`` = the client, ``aud``, ``iat``,
    ``exp`` = ``iat`` + ``lifetime``, a unique ``jti``; ``extra`` adds or replaces claims
    (a claim set to ``None`` is left out)."""
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + lifetime,
        "jti": jti or str(uuid.uuid4()),
    }
    claims.update(extra)
    return {name: value for name, value in claims.items() if value is not None}


# --- the HTTP server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A canned answer for one path, in place of what the server would serve there."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: bool = True  # False: no Content-Length; the body ends when the connection closes


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a server that is stopped is really gone (no
    # kept-alive connection goes on being served).
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        reply, delay = owner._received(Seen(self.command, path, dict(self.headers.items())))
        if delay and (owner._stopping.wait(delay) or self.server.closing):
            return  # stopped while answering slowly: the connection closes with no answer
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.content_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner._received(Seen(self.command, self.path.split("?", 1)[0], dict(self.headers.items())))
        self.send_error(405)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the caller gave up (e.g. on an oversized or slow answer): nothing to do

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: JwksServer) -> None:
        self.owner = owner
        self.closing = False
        super().__init__(address, _Handler)


class JwksServer:
    """A JWK Set on ``http://127.0.0.1:<port><jwks_path>``, and the keys to sign with.

    The newest key (``current``) signs unless a ``kid`` says otherwise.  Misbehaviour is set with
    ``redirect``, ``oversize``, ``slow``, ``fail``, ``reply``, ``leak_private_keys`` and
    ``cache_control``, and undone with ``behave_normally``; ``hits`` counts requests per path.
    """

    def __init__(self, *, keys: Iterable[str | SigningKey] = ("ES256",), jwks_path: str = "/jwks") -> None:
        self.jwks_path = jwks_path
        self._lock = threading.RLock()  # the handler threads read what the test thread changes
        self._keys: dict[str, SigningKey] = {}
        for key in keys:
            self.add_key(key)
        self.cache_control: str | None = None  # the JWKS's Cache-Control; None: no such header
        self.leak_private_keys = False  # serve the private members too (a document to refuse)
        self._replies: dict[str, Reply] = {}
        self._delays: dict[str, float] = {}
        self._aliases: dict[str, str] = {}  # path -> the path whose normal answer it serves
        self._hits: Counter[str] = Counter()
        self.seen: list[Seen] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- lifecycle --

    def start(self) -> Self:
        """Listen (again): on an ephemeral port the first time, then on that same port."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((HOST, self.port or 0), self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"jwks-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``; slow answers in progress
        are dropped unanswered."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.closing = True
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    @contextmanager
    def down(self) -> Iterator[None]:
        """``with server.down():`` unreachable inside the block, back on the same port after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (known once started; kept while down)."""
        if self.port is None:
            raise RuntimeError("start the server first")
        return f"http://{HOST}:{self.port}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}{self.jwks_path}"

    # -- keys --

    def add_key(self, key: str | SigningKey = "ES256", *, kid: str | None = None) -> SigningKey:
        """Serve one more key (an alg makes a new one); it becomes ``current``."""
        signing_key = key if isinstance(key, SigningKey) else SigningKey.generate(key, kid=kid)
        with self._lock:
            self._keys.pop(signing_key.kid, None)  # re-added: it becomes the newest
            self._keys[signing_key.kid] = signing_key
        return signing_key

    def remove_key(self, kid: str) -> SigningKey:
        with self._lock:
            return self._keys.pop(kid)

    def rotate(self, alg: str | None = None, *, keep_old: bool = True, kid: str | None = None) -> SigningKey:
        """A new key (``alg`` defaults to the current one's) becomes ``current``; the old keys stay
        published with ``keep_old`` (the usual overlap), else they are dropped at once."""
        new = SigningKey.generate(alg or self.current.alg, kid=kid)
        with self._lock:
            if not keep_old:
                self._keys.clear()
            return self.add_key(new)

    @property
    def keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys.values())

    @property
    def current(self) -> SigningKey:
        with self._lock:
            if not self._keys:
                raise LookupError("the server holds no key")
            return next(reversed(self._keys.values()))

    def key(self, kid: str | None = None) -> SigningKey:
        if kid is None:
            return self.current
        with self._lock:
            return self._keys[kid]

    def jwks(self, *, private: bool = False) -> dict[str, Any]:
        """The JWK Set served (public members unless ``private``)."""
        return {"keys": [key.private_jwk() if private else key.public_jwk() for key in self.keys]}

    # -- signing --

    def mint(
        self, claims: Mapping[str, Any], *, kid: str | None = None, alg: str | None = None,
        header_overrides: Mapping[str, Any] | None = None, key: SigningKey | None = None,
        signature: bytes | None = None,
    ) -> str:
        """A JWT of ``claims`` signed with the key ``kid`` (default ``current``), or with ``key``,
        one the server may not publish; see ``SigningKey.mint`` for the other arguments."""
        signer = key or self.key(kid)
        return signer.mint(claims, alg=alg, header_overrides=header_overrides, signature=signature)

    def client_assertion(
        self, client_id: str, *, audience: str | list[str], kid: str | None = None, alg: str | None = None,
        lifetime: int = 60, jti: str | None = None, now: int | None = None,
        header_overrides: Mapping[str, Any] | None = None, key: SigningKey | None = None, **extra: Any,
    ) -> str:
        """A ``private_key_jwt`` assertion (RFC 7523 §2.2, §3) of ``client_id`` for ``audience``."""
        claims = client_assertion_claims(client_id, audience=audience, lifetime=lifetime, jti=jti, now=now, **extra)
        return self.mint(claims, kid=kid, alg=alg, header_overrides=header_overrides, key=key)

    # -- misbehaviour --

    def reply(self, path: str, reply: Reply) -> None:
        """Answer ``path`` with ``reply`` instead of its normal answer."""
        with self._lock:
            self._replies[path] = reply

    def redirect(self, to: str | None = None, *, path: str | None = None, status: int = 302) -> str:
        """Answer ``path`` (default: the JWKS) with a redirect to ``to``; by default to a path of
        this server that serves the same JWKS, so that a caller who follows it gets keys and
        shows up in ``hits`` there.  Returns the target."""
        path = path or self.jwks_path
        if to is None:
            moved = f"/moved{path}"
            with self._lock:
                self._aliases[moved] = path
            to = f"{self.url}{moved}"
        self.reply(path, Reply(status, b"", {"Location": to}))
        return to

    def oversize(self, size: int = MAX_JWKS_BYTES + 1, *, path: str | None = None, content_length: bool = True) -> None:
        """Serve the real JWKS padded with JSON whitespace to ``size`` bytes (still a valid
        document, so only its size is wrong); without ``content_length`` the length is not
        announced and the body ends when the connection closes."""
        path = path or self.jwks_path
        body = self._normal(path).body
        self.reply(path, Reply(200, body + b" " * max(0, size - len(body)), {"Content-Type": "application/json"},
                               content_length=content_length))

    def slow(self, seconds: float = 3.0, *, path: str | None = None) -> None:
        """Answer ``path`` (default: the JWKS) after ``seconds``."""
        with self._lock:
            self._delays[path or self.jwks_path] = seconds

    def fail(self, status: int = 503, *, path: str | None = None) -> None:
        body = b'{"error":"unavailable"}'
        self.reply(path or self.jwks_path, Reply(status, body, {"Content-Type": "application/json"}))

    def behave_normally(self) -> None:
        """Undo every misbehaviour (keys, ``cache_control`` and counts are kept)."""
        with self._lock:
            self._replies.clear()
            self._delays.clear()
            self._aliases.clear()
        self.leak_private_keys = False

    # -- counting --

    def hits(self, path: str | None = None) -> int:
        """How many requests ``path`` (default: the JWKS) got."""
        with self._lock:
            return self._hits[path or self.jwks_path]

    @property
    def hits_by_path(self) -> dict[str, int]:
        with self._lock:
            return dict(self._hits)

    def reset_hits(self) -> None:
        with self._lock:
            self._hits.clear()
            self.seen.clear()

    def wait_for_hits(self, count: int, *, path: str | None = None, timeout: float = 5.0) -> int:
        """Wait (at most ``timeout`` s) until ``path`` got ``count`` requests; return how many it got."""
        deadline = time.monotonic() + timeout
        while (got := self.hits(path)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return got

    # -- answering --

    def _received(self, seen: Seen) -> tuple[Reply, float]:
        with self._lock:
            self._hits[seen.path] += 1
            self.seen.append(seen)
            canned = self._replies.get(seen.path)
            delay = self._delays.get(seen.path, 0.0)
            target = self._aliases.get(seen.path, seen.path)
        return canned or self._normal(target), delay

    def _normal(self, path: str) -> Reply:
        """What the path serves when nothing is set to misbehave."""
        if path == self.jwks_path:
            headers = {"Content-Type": "application/json"}
            if self.cache_control is not None:
                headers["Cache-Control"] = self.cache_control
            return Reply(200, json.dumps(self._jwks_document()).encode(), headers)
        return Reply(404, b"not found\n", {"Content-Type": "text/plain"})

    def _jwks_document(self) -> dict[str, Any]:
        return self.jwks(private=self.leak_private_keys)


class WorkloadIssuer(JwksServer):
    """An OIDC-style issuer: discovery at ``<issuer>/.well-known/openid-configuration`` naming
    ``issuer`` and ``jwks_uri``, the JWKS, and the tokens a workload platform hands out.

    ``issuer_path`` puts the issuer under a path (EKS-style ``/id/<cluster>``); ``issuer`` is then
    ``http://127.0.0.1:<port><issuer_path>``.  Set ``discovery_issuer`` to make the document name
    another issuer; ``spiffe_bundle`` serves the JWKS as a SPIFFE trust bundle.
    """

    def __init__(
        self, *, keys: Iterable[str | SigningKey] = ("ES256",), issuer_path: str = "",
        jwks_path: str | None = None,
    ) -> None:
        self.issuer_path = issuer_path.rstrip("/")
        super().__init__(keys=keys, jwks_path=jwks_path or f"{self.issuer_path}/openid/v1/jwks")
        self.discovery_issuer: str | None = None
        self.spiffe_bundle = False  # keys with "use": "jwt-svid", plus spiffe_sequence and spiffe_refresh_hint
        self.spiffe_sequence = 1

    @property
    def issuer(self) -> str:
        return f"{self.url}{self.issuer_path}"

    @property
    def discovery_path(self) -> str:
        return f"{self.issuer_path}/.well-known/openid-configuration"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}{self.discovery_path}"

    def discovery(self) -> dict[str, Any]:
        """The document served at ``discovery_path`` (as a Kubernetes API server serves it)."""
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({key.alg for key in self.keys}),
        }

    def _normal(self, path: str) -> Reply:
        if path == self.discovery_path:
            return Reply(200, json.dumps(self.discovery()).encode(), {"Content-Type": "application/json"})
        return super()._normal(path)

    def _jwks_document(self) -> dict[str, Any]:
        if not self.spiffe_bundle:
            return super()._jwks_document()
        # The SPIFFE Trust Domain and Bundle spec §4: JWT-SVID keys carry "use": "jwt-svid".
        keys = [key.private_jwk() if self.leak_private_keys else key.public_jwk(use="jwt-svid") for key in self.keys]
        if self.leak_private_keys:
            for member in keys:
                member["use"] = "jwt-svid"
        return {"keys": keys, "spiffe_sequence": self.spiffe_sequence, "spiffe_refresh_hint": 300}

    # -- realistic claims --

    def kubernetes_claims(
        self, *, audience: str | list[str], namespace: str = "payments", service_account: str = "api",
        pod: str = "api-6d4cf56db6-x7kqp", node: str = "node-a", lifetime: int = 3600, now: int | None = None,
    ) -> dict[str, Any]:
        """A projected service-account token's claims (Kubernetes 1.30: ``aud`` is a list, the
        ``kubernetes.io`` claim names namespace, service account, pod and node with their uids)."""
        now = int(time.time()) if now is None else now
        return {
            "aud": [audience] if isinstance(audience, str) else list(audience),
            "exp": now + lifetime,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": node, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"node/{node}"))},
                "pod": {"name": pod, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{pod}"))},
                "serviceaccount": {
                    "name": service_account,
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sa/{namespace}/{service_account}")),
                },
            },
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }

    def kubernetes_token(self, *, kid: str | None = None, **claims: Any) -> str:
        return self.mint(self.kubernetes_claims(**claims), kid=kid)

    def github_actions_claims(
        self, *, audience: str, repository: str = "acme/app", ref: str = "refs/heads/main",
        environment: str | None = None, event_name: str = "push", workflow: str = "deploy",
        actor: str = "octocat", job_workflow_ref: str | None = None, lifetime: int = 300, now: int | None = None,
    ) -> dict[str, Any]:
        """A GitHub Actions OIDC token's claims.  ``sub`` follows GitHub's default template:
        ``repo:ORG/REPO:environment:NAME`` for a job with an environment,
        ``repo:ORG/REPO:pull_request`` for a pull request, else ``repo:ORG/REPO:ref:REF``.
        GitHub's ``iss`` is ``GITHUB_ISSUER``; ours is this server's URL.  Numbers are strings,
        and ``nbf`` lies before ``iat``, as GitHub writes them."""
        now = int(time.time()) if now is None else now
        owner = repository.split("/", 1)[0]
        if environment:
            subject = f"repo:{repository}:environment:{environment}"
        elif event_name == "pull_request":
            subject = f"repo:{repository}:pull_request"
        else:
            subject = f"repo:{repository}:ref:{ref}"
        workflow_ref = f"{repository}/.github/workflows/{workflow}.yml@{ref}"
        sha = uuid.uuid5(uuid.NAMESPACE_URL, f"{repository}@{ref}").hex + "0" * 8
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": subject,
            "aud": audience,
            "ref": ref,
            "sha": sha,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": "65",
            "repository_id": "74",
            "repository_visibility": "private",
            "actor": actor,
            "actor_id": "12",
            "run_id": "8761234567",
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "workflow": workflow,
            "workflow_ref": workflow_ref,
            "workflow_sha": sha,
            "job_workflow_ref": job_workflow_ref or workflow_ref,
            "job_workflow_sha": sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": event_name,
            "ref_type": "branch" if ref.startswith("refs/heads/") else "tag",
            "ref_protected": "true",
            "iss": self.issuer,
            "nbf": now - 600,
            "exp": now + lifetime,
            "iat": now,
        }
        if environment:
            claims["environment"] = environment
        return claims

    def github_actions_token(self, *, kid: str | None = None, **claims: Any) -> str:
        return self.mint(self.github_actions_claims(**claims), kid=kid, header_overrides={"typ": "JWT"})

    def spiffe_svid_claims(
        self, *, audience: str | list[str], spiffe_id: str = "spiffe://example.org/ns/payments/sa/api",
        lifetime: int = 300, with_iss: bool = False, with_iat: bool = True, now: int | None = None,
    ) -> dict[str, Any]:
        """A JWT-SVID's claims (SPIFFE JWT-SVID spec §3): ``sub`` the SPIFFE ID, ``aud``, ``exp``,
        ``iat``; no ``iss`` unless ``with_iss`` (SPIRE sets one only when configured to)."""
        now = int(time.time()) if now is None else now
        claims: dict[str, Any] = {"sub": spiffe_id, "aud": [audience] if isinstance(audience, str) else audience,
                                  "exp": now + lifetime}
        if with_iat:
            claims["iat"] = now
        if with_iss:
            claims["iss"] = self.issuer
        return claims

    def spiffe_svid(self, *, kid: str | None = None, **claims: Any) -> str:
        return self.mint(self.spiffe_svid_claims(**claims), kid=kid, header_overrides={"typ": "JWT"})


# --- fixtures ----------------------------------------------------------------------------------
# Import them into a test module (``from tests.workload_issuer import workload_issuer_fixture``;
# the fixture is named ``workload_issuer``, so the import shadows nothing), or list this module in
# the root conftest's ``pytest_plugins``.


@pytest.fixture(name="make_workload_issuer")
def make_workload_issuer_fixture() -> Iterator[Callable[..., WorkloadIssuer]]:
    """``make_workload_issuer(**WorkloadIssuer kwargs)``: started issuers, stopped after the test."""
    started: list[JwksServer] = []

    def make(**kwargs: Any) -> WorkloadIssuer:
        issuer = WorkloadIssuer(**kwargs).start()
        started.append(issuer)
        return issuer

    yield make
    for server in started:
        server.stop()


@pytest.fixture(name="workload_issuer")
def workload_issuer_fixture(make_workload_issuer: Callable[..., WorkloadIssuer]) -> WorkloadIssuer:
    """One started issuer with an ES256 key."""
    return make_workload_issuer()


@pytest.fixture(name="jwks_server")
def jwks_server_fixture() -> Iterator[JwksServer]:
    """A client's ``jwks_uri`` (``jwks_server.jwks_uri``) with an ES256 key, for ``private_key_jwt``."""
    with JwksServer() as server:
        yield server
