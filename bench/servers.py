"""The servers under test: how each is prepared (database, clients) and run under gunicorn.

Every Python server runs with authserver's own gunicorn configuration (2 sync workers, the same
keep-alive and timeouts), bound to 127.0.0.1 on a free port, on a fresh database, as a
subprocess in its own session that is stopped by its own process IDs.  node-oidc-provider runs
as a ``node:cluster`` primary with as many workers, set up the same way.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from base64 import b64encode, urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from bench import procstat
from bench.assertions import AssertionSigner, DPoPProver, WorkloadTokenIssuer
from bench.certificates import ClientCertificate, payload_needles

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
GUNICORN_CONFIG = "authserver/gunicorn.conf.py"
WORKERS = 2
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SETUP_TIMEOUT = 900.0


class Unavailable(RuntimeError):
    """A server this machine cannot run (its runtime or its packages are missing): its row is skipped."""


@dataclass(frozen=True)
class Credential:
    client_id: str
    client_secret: str

    def basic(self) -> str:
        """The Authorization header value (client_secret_basic, RFC 6749 §2.3.1: form-encoded inside)."""
        raw = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + b64encode(raw.encode("ascii")).decode("ascii")


@dataclass(frozen=True)
class Target:
    """A server ready to start: its WSGI app (or its own command line), its environment and the
    token request it answers."""

    name: str
    wsgi: str  # "" with ``program``
    env: dict[str, str]
    port: int
    token_path: str
    body: str
    credentials: tuple[Credential, ...]
    # private_key_jwt: each request carries its own fresh assertion (``body`` plus one)
    # instead of client_secret_basic.
    signer: AssertionSigner | None = None
    # False: the client authenticates in the body alone (federation: ``body`` holds client_id
    # and a reusable workload token), no Authorization header.
    basic_auth: bool = True
    # What every good answer's body holds, each of them (the Lua script counts any other answer as an error).
    expect: str | tuple[str, ...] = '"access_token"'
    # DPoP: each request is this one (``body``, client_secret_basic) plus its own fresh proof
    # in a ``DPoP`` header.
    prover: DPoPProver | None = None
    # mTLS (tls_client_auth): every request carries this certificate in ``Client-Cert``, as a
    # TLS-terminating proxy forwards it, and every token is bound to it (``cnf`` ``x5t#S256``).
    certificate: ClientCertificate | None = None
    # A server that is not a WSGI app under gunicorn: its command line, run from ROOT, a primary
    # process forking WORKERS workers as gunicorn's master does.
    program: tuple[str, ...] = ()
    # Every access token is a JWT access token (RFC 9068) signed with this alg: checked decoded on
    # the first request, and by the beginning of its JWS header in every answer (``expected``).
    token_alg: str | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def command(self) -> list[str]:
        return list(self.program) or [str(GUNICORN), "-c", GUNICORN_CONFIG, self.wsgi]

    @property
    def expected(self) -> tuple[str, ...]:
        expected = (self.expect,) if isinstance(self.expect, str) else self.expect
        return (*expected, jwt_header_needle(self.token_alg)) if self.token_alg else expected

    @property
    def single_use(self) -> bool:
        """Whether each request may be sent only once (its assertion or its DPoP proof)."""
        return self.signer is not None or self.prover is not None

    @property
    def expected_any(self) -> tuple[str, ...]:
        """What every good answer's body holds at least one of (mTLS: the token's ``cnf`` claim, as
        base64url at each of its three alignments in the payload), or nothing to check."""
        return payload_needles(self.certificate.cnf_claim()) if self.certificate else ()

    def headers(self, credential: Credential) -> dict[str, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.signer is None and self.basic_auth:
            headers["Authorization"] = credential.basic()
        if self.certificate is not None:
            headers["Client-Cert"] = self.certificate.header()
        return headers


def jwt_header_needle(alg: str) -> str:
    """How an answer begins its access token when the JWS header begins ``{"alg":ALG,"typ":"at+jwt",``
    (as node-oidc-provider writes it): the whole base64url characters those bytes make."""
    head = json.dumps({"alg": alg, "typ": "at+jwt"}, separators=(",", ":"))[:-1] + ","
    encoded = urlsafe_b64encode(head.encode("ascii")).decode("ascii")
    return '"access_token":"' + encoded[: len(head) // 3 * 4]


@dataclass
class RunningServer:
    target: Target
    process: subprocess.Popen[bytes]
    log: Path
    workers: list[int] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The gunicorn master (or node's cluster primary) and its workers, as they are now."""
        return [self.process.pid, *procstat.children(self.process.pid)]

    def worker_rss(self) -> dict[int, int]:
        return {pid: procstat.rss_bytes(pid) for pid in procstat.children(self.process.pid)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _server_env(port: int, settings_module: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "CACHE_URL", "REDIS_URL", "DEBUG",
                 "TRUSTED_PROXIES", "MTLS_TRUSTED_CA_FILE", "MTLS_CLIENT_CERT_HEADER"):
        env.pop(name, None)  # a developer's own configuration must not leak into a measurement
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        BIND=f"{HOST}:{port}",
        WEB_CONCURRENCY=str(WORKERS),
        ACCESS_LOG="/dev/null",
        # authserver keeps its default INFO level: its "token issued" audit line is part of
        # the cost of a token (it goes to the server's log file in the temporary directory).
        LOG_LEVEL="INFO",
        SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def run_python(args: list[str], env: dict[str, str]) -> str:
    """Run the project's Python with ``args`` from the repository root; return its stdout."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [str(PYTHON), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=SETUP_TIMEOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _last_json_line(output: str) -> dict[str, str]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            value: dict[str, str] = json.loads(line)
            return value
    raise RuntimeError(f"no JSON in output:\n{output}")


# --- authserver --------------------------------------------------------------------------

AUTHSERVER_SCOPE = "invoices:read"
# What each bench client may have: the same for every authentication method.
CLIENT_GRANTS = ("--scope", "invoices:read", "--scope", "invoices:write",
                 "--tenant", "acme", "--role", "auditor", "--role", "acme/reader")
PRIVATE_KEY_JWT_CLIENT = "bench-pkjwt"
FEDERATED_CLIENT = "bench-federated"
MTLS_CLIENT = "bench-mtls"
TRUSTED_ISSUER_NAME = "bench-cluster"


def _authserver_env(port: int, database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """authserver's environment on ``database_url`` (and ``extra``), migrated; its ISSUER is its own URL."""
    env = _server_env(port, "authserver.settings", {
        "SECRET_HASH_KEY": secrets.token_hex(32),
        "ISSUER": f"http://{HOST}:{port}",
        "DATABASE_URL": database_url,
        **(extra or {}),
    })
    run_python(["manage.py", "migrate", "--noinput", "-v", "0"], env)
    return env


def authserver_target(*, name: str, database_url: str, registry_file: Path | None = None,
                      registry_size: int = 0, registry_sample: int = 0) -> Target:
    """authserver after ``migrate`` and ``createclient`` (scopes, a tenant, roles) on ``database_url``.

    With ``registry_size``, the database is first seeded with that many more clients and the
    requests rotate over ``registry_sample`` of them instead of the one client.
    """
    port = free_port()
    env = _authserver_env(port, database_url)
    created = _last_json_line(run_python(
        ["manage.py", "createclient", "bench", "--client-id", "bench", *CLIENT_GRANTS, "--json"], env))
    credentials: tuple[Credential, ...] = (Credential(created["client_id"], created["client_secret"]),)
    if registry_size and registry_file is not None:
        run_python(["-m", "bench.registry", str(registry_size), str(registry_sample), str(registry_file)], env)
        credentials = tuple(Credential(c["client_id"], c["client_secret"])
                            for c in json.loads(registry_file.read_text()))
    body = f"grant_type=client_credentials&scope={quote(AUTHSERVER_SCOPE, safe='')}"
    return Target(name, "authserver.wsgi", env, port, "/oauth/token", body, credentials)


def private_key_jwt_target(*, name: str, database_url: str, jwks_file: Path) -> Target:
    """authserver as ``authserver_target``, its one client registered for ``private_key_jwt``
    (RFC 7523) with an EC P-256 public key and no secret; requests carry ES256 assertions."""
    port = free_port()
    env = _authserver_env(port, database_url)
    signer = AssertionSigner(PRIVATE_KEY_JWT_CLIENT, audience=env["ISSUER"])
    created = _last_json_line(run_python([
        "manage.py", "createclient", PRIVATE_KEY_JWT_CLIENT, "--client-id", PRIVATE_KEY_JWT_CLIENT, *CLIENT_GRANTS,
        "--auth-method", "private_key_jwt", "--jwks-file", str(signer.write_jwks(jwks_file)), "--json",
    ], env))
    if created.get("client_id") != PRIVATE_KEY_JWT_CLIENT or "client_secret" in created:
        raise RuntimeError(f"createclient --auth-method private_key_jwt printed {created}")
    body = f"grant_type=client_credentials&scope={quote(AUTHSERVER_SCOPE, safe='')}"
    return Target(name, "authserver.wsgi", env, port, "/oauth/token", body,
                  (Credential(PRIVATE_KEY_JWT_CLIENT, ""),), signer=signer)


def dpop_target(*, name: str, database_url: str) -> Target:
    """authserver as ``authserver_target`` (the same client, secret and body), every request with a
    DPoP proof (RFC 9449) of its own: ES256, a P-256 key, ``htu`` the token endpoint under ISSUER."""
    target = authserver_target(name=name, database_url=database_url)
    prover = DPoPProver(target.env["ISSUER"] + target.token_path)
    return Target(name, target.wsgi, target.env, target.port, target.token_path, target.body,
                  target.credentials, expect=('"access_token"', '"token_type":"DPoP"'), prover=prover)


def mtls_target(*, name: str, database_url: str, ca_file: Path) -> Target:
    """authserver as ``authserver_target``, its one client registered for ``tls_client_auth``
    (RFC 8705 §2.1) by SAN DNS, no secret, its tokens certificate-bound (the method's default).
    The server trusts 127.0.0.1 as its TLS-terminating proxy and the bench's CA (``ca_file``);
    every request sends ``client_id`` in the body and the client's certificate in RFC 9440's
    ``Client-Cert``, as that proxy would forward it, over plain HTTP."""
    port = free_port()
    certificate = ClientCertificate()
    env = _authserver_env(port, database_url, {
        "TRUSTED_PROXIES": f"{HOST}/32", "MTLS_TRUSTED_CA_FILE": str(certificate.write_ca(ca_file)),
    })
    created = _last_json_line(run_python([
        "manage.py", "createclient", MTLS_CLIENT, "--client-id", MTLS_CLIENT, *CLIENT_GRANTS,
        "--auth-method", "tls_client_auth", "--tls-san-dns", certificate.dns, "--json",
    ], env))
    if created.get("client_id") != MTLS_CLIENT or "client_secret" in created:
        raise RuntimeError(f"createclient --auth-method tls_client_auth printed {created}")
    body = f"grant_type=client_credentials&client_id={MTLS_CLIENT}"
    return Target(name, "authserver.wsgi", env, port, "/oauth/token", body, (Credential(MTLS_CLIENT, ""),),
                  basic_auth=False, expect=('"access_token"', '"token_type":"Bearer"'), certificate=certificate)


def _add_trusted_issuer(env: dict[str, str], *, name: str, issuer: str, jwks_file: Path) -> None:
    """Register ``issuer`` with the static JWK Set in ``jwks_file``: ``manage.py addissuer`` when the
    project has it, else ``clients.services.trusted_issuer_create`` through ``manage.py shell``."""
    if (ROOT / "clients" / "management" / "commands" / "addissuer.py").exists():
        run_python(["manage.py", "addissuer", name, "--issuer", issuer, "--jwks-file", str(jwks_file)], env)
        return
    code = (
        "import json, pathlib\n"
        "from clients.services import trusted_issuer_create\n"
        f"trusted_issuer_create(name={name!r}, issuer={issuer!r}, "
        f"jwks=json.loads(pathlib.Path({str(jwks_file)!r}).read_text()))\n"
    )
    run_python(["manage.py", "shell", "-c", code], env)


def federated_target(*, name: str, database_url: str, jwks_file: Path, alg: str = "RS256") -> Target:
    """authserver as ``authserver_target``, its one client (``private_key_jwt``, no secret, no keys of
    its own) authenticated by workload identity federation (DESIGN §9.2): a trusted issuer playing a
    Kubernetes cluster, registered with a static JWK Set (so no HTTP server is needed), and the
    client's identity ``system:serviceaccount:payments:*`` with ``/kubernetes.io/namespace`` =
    ``payments``.  Every request sends ``client_id`` and the same service-account token (``alg``,
    default RS256 as Kubernetes signs), which the server accepts until it expires (1 h)."""
    port = free_port()
    env = _authserver_env(port, database_url)
    cluster = WorkloadTokenIssuer(audience=env["ISSUER"], alg=alg)
    _add_trusted_issuer(env, name=TRUSTED_ISSUER_NAME, issuer=cluster.issuer, jwks_file=cluster.write_jwks(jwks_file))
    identity = {"trusted_issuer": TRUSTED_ISSUER_NAME, "subject": "system:serviceaccount:payments:*",
                "claims": {"/kubernetes.io/namespace": "payments"}}
    created = _last_json_line(run_python([
        "manage.py", "createclient", FEDERATED_CLIENT, "--client-id", FEDERATED_CLIENT, *CLIENT_GRANTS,
        "--auth-method", "private_key_jwt", "--federated-identity", json.dumps(identity), "--json",
    ], env))
    if created.get("client_id") != FEDERATED_CLIENT or "client_secret" in created:
        raise RuntimeError(f"createclient --federated-identity printed {created}")
    form = f"grant_type=client_credentials&scope={quote(AUTHSERVER_SCOPE, safe='')}"
    body = cluster.body(form, FEDERATED_CLIENT, cluster.token())
    return Target(name, "authserver.wsgi", env, port, "/oauth/token", body,
                  (Credential(FEDERATED_CLIENT, ""),), basic_auth=False)
def introspection_target(*, name: str, database_url: str, kind: str) -> Target:
    """authserver answering RFC 7662 introspection of one live access token (``kind="token"``)
    or API key (``kind="key"``), the bench client authenticating with Basic as a resource server would."""
    target = authserver_target(name=name, database_url=database_url)
    made = _last_json_line(run_python(["-m", "bench.introspection"], target.env))
    token = made["access_token" if kind == "token" else "api_key"]
    return Target(name, target.wsgi, target.env, target.port, "/oauth/introspect",
                  f"token={quote(token, safe='')}", target.credentials, expect='"active":true')


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database ``bench_<random>`` on the server of ``server_url``, dropped afterwards."""
    import psycopg  # only --postgres needs it

    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the trivial Django view -------------------------------------------------------------

def trivial_target() -> Target:
    """Django answering fixed token-shaped JSON: the floor any Django token endpoint stands on."""
    port = free_port()
    env = _server_env(port, "bench.trivial.settings", {})
    credential = Credential("trivial", "not-checked")
    return Target("trivial", "bench.trivial.wsgi", env, port, "/oauth/token",
                  "grant_type=client_credentials", (credential,))


# --- stock django-oauth-toolkit ----------------------------------------------------------

def dot_target(*, name: str, database: Path, hashed: bool) -> Target:
    """django-oauth-toolkit 3.4 as shipped, one confidential client-credentials Application."""
    port = free_port()
    env = _server_env(port, "bench.dot.settings", {"BENCH_DOT_DATABASE": str(database)})
    run_python(["-m", "django", "migrate", "--noinput", "-v", "0"], env)
    created = _last_json_line(run_python(["-m", "bench.dot.seed", "--hashed" if hashed else "--plain"], env))
    credential = Credential(created["client_id"], created["client_secret"])
    return Target(name, "bench.dot.wsgi", env, port, "/o/token/",
                  "grant_type=client_credentials&scope=read", (credential,))


# --- node-oidc-provider ----------------------------------------------------------------

NODE_OIDC_PROVIDER = Path(__file__).resolve().parent / "node-oidc-provider"
NODE_CLIENT = "bench-node"
NPM_TIMEOUT = 300.0


def node_oidc_provider_target(*, name: str) -> Target:
    """node-oidc-provider 9 (``bench/node-oidc-provider/server.mjs``): 2 cluster workers, one client
    (``client_secret_basic``, client credentials, authserver's two scopes) and a resource server
    (``https://api.example.com``, the default resource) whose access tokens are JWTs signed RS256
    with a key made per run; the same body as ``authserver``'s.  Its packages are installed on
    first use (``npm ci``); without node or them the row is skipped (``Unavailable``)."""
    node = shutil.which("node")
    if node is None:
        raise Unavailable("node is not installed (Node.js 20.19 or later; 22 LTS is what oidc-provider 9 asks for)")
    npm_install(NODE_OIDC_PROVIDER)
    port = free_port()
    credential = Credential(NODE_CLIENT, secrets.token_urlsafe(32))
    env = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "NODE_OPTIONS", "NODE_DEBUG")}
    env.update(NODE_ENV="production", PORT=str(port), WEB_CONCURRENCY=str(WORKERS),
               BENCH_CLIENT_ID=credential.client_id, BENCH_CLIENT_SECRET=credential.client_secret)
    body = f"grant_type=client_credentials&scope={quote(AUTHSERVER_SCOPE, safe='')}"
    return Target(name, "", env, port, "/token", body, (credential,),
                  program=(node, str(NODE_OIDC_PROVIDER / "server.mjs")), token_alg="RS256")


def npm_install(folder: Path) -> None:
    """``npm ci`` in ``folder`` unless its ``node_modules`` already holds every version its
    ``package.json`` pins; raise ``Unavailable`` if npm is missing, fails or takes too long."""
    if _npm_installed(folder):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"npm is not installed, and {folder.relative_to(ROOT)}/node_modules is not either")
    command = [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--fetch-retries=1", "--fetch-timeout=30000"]
    began = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - npm with our own arguments
            command, cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired as timeout:
        raise Unavailable(f"npm ci in {folder.relative_to(ROOT)} took over {NPM_TIMEOUT:.0f} s (offline?)") from timeout
    if done.returncode != 0 or not _npm_installed(folder):
        lines = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
        raise Unavailable(f"npm ci in {folder.relative_to(ROOT)} failed ({done.returncode}; offline?): "
                          + "\n".join(lines[:6]))
    print(f"  npm ci in {folder.relative_to(ROOT)}: {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def _npm_installed(folder: Path) -> bool:
    pinned: dict[str, str] = json.loads((folder / "package.json").read_text()).get("dependencies", {})
    for package, version in pinned.items():
        manifest = folder / "node_modules" / package / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


# --- running ---------------------------------------------------------------------------

@contextmanager
def serve(target: Target, log: Path) -> Iterator[RunningServer]:
    """Run ``target`` (under gunicorn, or its own program) until the block ends; stop it by its own
    PIDs in any case."""
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own gunicorn (or node) and arguments
            target.command, cwd=ROOT, env=target.env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(target, process, log)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(server)


def _wait_until_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.target.name} exited at start:\n{server.log.read_text()[-3000:]}")
        workers = procstat.children(server.process.pid)
        if len(workers) == WORKERS and _accepts(server.target.port):
            server.workers = workers
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.target.name} not ready within {START_TIMEOUT:.0f} s:\n{server.log.read_text()}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _stop(server: RunningServer) -> None:
    """SIGTERM to the master, which stops its workers gracefully; SIGKILL to each if it hangs."""
    if server.process.poll() is not None:
        return
    workers = procstat.children(server.process.pid)
    server.process.terminate()
    try:
        server.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=STOP_TIMEOUT)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def check_token_request(target: Target) -> None:
    """One request before any load: the server answers 200 with what a good answer holds
    (an access token; for introspection, ``"active":true``)."""
    connection = http.client.HTTPConnection(HOST, target.port, timeout=60)
    try:
        body = target.signer.body(target.body) if target.signer else target.body
        headers = target.headers(target.credentials[0])
        if target.prover:
            headers["DPoP"] = target.prover.proof()
        connection.request("POST", target.token_path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status == 200 and target.token_alg is not None:
        _check_jwt_header(target, target.token_alg, payload)
    if response.status != 200 or not all(expected.encode() in payload for expected in target.expected):
        raise RuntimeError(f"{target.name}: request answered {response.status}: {payload[:500]!r}")
    if target.certificate is not None:
        _check_bound(target, target.certificate, payload)


def _check_jwt_header(target: Target, alg: str, payload: bytes) -> None:
    """The access token is a JWT access token (RFC 9068 §2.1: ``typ`` ``at+jwt``) signed with ``alg``,
    and the wrk script's check of that (``Target.expected``) finds it."""
    token = json.loads(payload)["access_token"]
    segment = token.split(".")[0]
    header = json.loads(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if header.get("alg") != alg or header.get("typ") != "at+jwt":
        raise RuntimeError(f"{target.name}: access token header {header!r}, not alg {alg} typ at+jwt")
    if jwt_header_needle(alg).encode() not in payload:
        raise RuntimeError(f"{target.name}: the wrk check would not find the header {header!r} as it is written")


def _check_bound(target: Target, certificate: ClientCertificate, payload: bytes) -> None:
    """The token is bound to ``certificate`` (RFC 8705 §3.1), and the wrk script's check of that
    (``Target.expected_any``) finds it."""
    token = json.loads(payload)["access_token"]
    segment = token.split(".")[1]
    claims = json.loads(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if claims.get("cnf") != {"x5t#S256": certificate.thumbprint}:
        raise RuntimeError(f"{target.name}: token not bound to the client certificate: cnf {claims.get('cnf')!r}")
    if not any(needle in segment for needle in target.expected_any):
        raise RuntimeError(f"{target.name}: the wrk check would not find cnf in the token payload {segment!r}")
