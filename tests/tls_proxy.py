"""A real nginx in front of a test server: TLS termination and client certificates (RFC 8705, RFC 9440).

``tls_proxy(upstream, directory)`` starts Debian's nginx on a free 127.0.0.1 port with a
server certificate from a fresh test CA (``tests/pki.py``), asks every client for a
certificate without judging it (authserver checks the chain, or the registered self-signed
certificate, itself), and forwards the certificate it got as URL-encoded PEM in one header.
Headers a client sends under the RFC 9440 names are dropped, so that only nginx speaks for
the TLS connection.

``NGINX_SERVER`` is the part an operator copies (README shows it); ``NGINX_CONF`` wraps it
with what a throwaway instance needs: everything (pid, logs, temporary files) under the
test's directory and nothing under /var.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests import pki

START_TIMEOUT = 10.0  # seconds until the port must accept TLS
STOP_TIMEOUT = 5.0  # seconds between SIGQUIT (graceful) and SIGKILL
GO_BUILD_TIMEOUT = 300
GOPATH = Path("/usr/share/gocode")  # Debian's golang-golang-x-oauth2-dev installs x/oauth2 here
GO_MTLS_CLIENT = Path(__file__).parent / "go" / "mtls_clientcredentials.go"

NGINX_SERVER = """\
server {
    listen {{ listen }} ssl;
    server_name {{ server_name }};

    ssl_certificate     {{ certificate }};
    ssl_certificate_key {{ certificate_key }};
    ssl_protocols       TLSv1.2 TLSv1.3;

    # mTLS (RFC 8705): ask every client for a certificate, but let authserver judge it:
    # it checks the chain against MTLS_TRUSTED_CA_FILE, and self-signed certificates
    # (self_signed_tls_client_auth) have no chain at all.  A client may also send none.
    ssl_verify_client optional_no_ca;
    ssl_verify_depth  3;

    # A header longer than 16k is refused here (a JSON 400, below).
    large_client_header_buffers 4 16k;

    # nginx's own refusals answered in JSON like authserver's (RFC 6749 §5.2): a header
    # too large (494), plain http to this port (497), malformed HTTP; authserver down.
    error_page 400 494 495 496 497 =400 @bad_request;
    error_page 502 503 504 =503 @unavailable;
    location @bad_request {
        default_type application/json;
        add_header Cache-Control no-store always;
        add_header Pragma no-cache always;
        return 400 '{"error":"invalid_request","error_description":"The proxy refused the request."}';
    }
    location @unavailable {
        default_type application/json;
        add_header Cache-Control no-store always;
        add_header Pragma no-cache always;
        add_header Retry-After 5 always;
        return 503 '{"error":"temporarily_unavailable","error_description":"Retry shortly."}';
    }

    location / {
        proxy_pass {{ upstream }};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;

        # The client's certificate as URL-encoded PEM, empty when it sent none
        # (authserver: MTLS_CLIENT_CERT_HEADER).  Setting the header here replaces
        # whatever the client sent under that name.
        proxy_set_header {{ client_cert_header }} $ssl_client_escaped_cert;
        # RFC 9440 headers are nginx's to send, never the client's: an empty value
        # drops the header.
        proxy_set_header Client-Cert "";
        proxy_set_header Client-Cert-Chain "";
    }
}
"""

NGINX_CONF = """\
# A throwaway nginx for tests: run with -p <directory>, so relative paths are under it.
worker_processes 1;
pid nginx.pid;
error_log error.log info;

events {
    worker_connections 64;
}

http {
    access_log access.log;
    client_body_temp_path temp/client_body;
    proxy_temp_path       temp/proxy;
    fastcgi_temp_path     temp/fastcgi;
    uwsgi_temp_path       temp/uwsgi;
    scgi_temp_path        temp/scgi;

{{ server }}
}
"""


@dataclass(frozen=True)
class TLSProxy:
    url: str  # https://127.0.0.1:<port>
    ca_file: Path  # the CA that signed the proxy's server certificate (requests' verify=)
    directory: Path
    error_log: Path


class NginxError(RuntimeError):
    """nginx is missing, or did not start."""


def render(template: str, **values: str) -> str:
    """Fill the ``{{ name }}`` placeholders of a template (nginx's own braces and ``$`` stay as they are)."""
    return re.sub(r"\{\{ (\w+) \}\}", lambda match: values[match[1]], template)


@contextmanager
def tls_proxy(upstream: str, directory: Path, *, client_cert_header: str = "X-SSL-Client-Cert") -> Iterator[TLSProxy]:
    """Run nginx terminating TLS on 127.0.0.1 in front of ``upstream`` (e.g. ``http://127.0.0.1:8123``)."""
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
    if nginx is None:
        raise NginxError("nginx is not installed: apt-get install nginx (Debian's package; the mTLS tests need it)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    ca = pki.make_ca("authserver test proxy CA")
    ca_file, _ = ca.write(directory, "proxy-ca")
    server = pki.issue(
        ca, subject="CN=localhost", dns=["localhost"], ips=["127.0.0.1"], client_auth=False, server_auth=True
    )
    certificate, certificate_key = server.write(directory, "proxy-server")
    port = _free_port()
    server_block = render(
        NGINX_SERVER,
        listen=f"127.0.0.1:{port}",
        server_name="localhost",
        certificate=str(certificate),
        certificate_key=str(certificate_key),
        upstream=upstream,
        client_cert_header=client_cert_header,
    )
    (directory / "nginx.conf").write_text(render(NGINX_CONF, server=_indent(server_block)))
    error_log = directory / "error.log"
    # As root, nginx's workers run as nobody, who cannot enter pytest's 0700 temporary
    # directories (temp/ is for request bodies and responses nginx buffers to disk).
    user = " user root;" if os.geteuid() == 0 else ""
    with (directory / "nginx.out").open("wb") as output:
        process = subprocess.Popen(
            [nginx, "-p", f"{directory}/", "-c", "nginx.conf", "-e", str(error_log), "-g", f"daemon off;{user}"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the workers can be killed with it
        )
    try:
        _wait_for_tls(process, port, ca_file, directory)
        yield TLSProxy(url=f"https://127.0.0.1:{port}", ca_file=ca_file, directory=directory, error_log=error_log)
    finally:
        _stop(process)


def build_go_mtls_client(directory: Path) -> Path:
    """Compile ``tests/go/mtls_clientcredentials.go`` against Debian's x/oauth2 (GOPATH mode, no network)."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/oauth2/clientcredentials").is_dir():
        raise RuntimeError("Go and x/oauth2 are missing: apt-get install golang-go golang-golang-x-oauth2-dev")
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / "mtls_clientcredentials"
    env = {key: value for key, value in os.environ.items() if key != "GOFLAGS"}
    env.update(GO111MODULE="off", GOPATH=str(GOPATH), GOCACHE=str(directory / "go-cache"))
    build = subprocess.run(
        [go, "build", "-o", str(program), str(GO_MTLS_CLIENT)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=GO_BUILD_TIMEOUT, check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"go build {GO_MTLS_CLIENT.name} failed:\n{build.stderr}")
    return program


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _indent(text: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def _wait_for_tls(process: subprocess.Popen[bytes], port: int, ca_file: Path, directory: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return
        except OSError:
            time.sleep(0.05)
    state = f"exited with {process.returncode}" if process.poll() is not None else f"not ready in {START_TIMEOUT} s"
    raise NginxError(f"nginx {state} on 127.0.0.1:{port}\n{_logs(directory)}")


def _logs(directory: Path) -> str:
    parts = []
    for name in ("nginx.out", "error.log"):
        path = directory / name
        if path.exists():
            parts.append(f"--- {path} ---\n{path.read_text(errors='replace')}")
    return "\n".join(parts)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
