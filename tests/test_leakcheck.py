"""The leak check (tests/leakcheck.py) finds what it must, and only that."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pytest

from clients.secrets import generate_api_key, generate_secret, hash_secret
from tests.conftest import assert_oauth_error, basic, post_token
from tests.leakcheck import Known, LeakCheck, read_log_files, scan

pytest_plugins = ["pytester"]

PROJECT = Path(__file__).resolve().parent.parent
# Anything longer than the 12-character prefix of a secret.
MORE_THAN_A_PREFIX = re.compile(r"ascs_[A-Za-z0-9_-]{8,}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_token(jti: str) -> str:
    header = _b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}).encode())
    payload = _b64(json.dumps({"iss": "http://testserver", "jti": jti}).encode())
    return f"{header}.{payload}.{_b64(secrets.token_bytes(64))}"


def test_scan_finds_secrets_hashes_and_tokens_and_prints_none_of_them() -> None:
    known = Known()
    secret, token = generate_secret(), fake_token("jti-1")
    digest = hmac.new(secrets.token_bytes(32), secret.encode(), hashlib.sha256).hexdigest()
    known.add_secret(secret)
    known.add_hash(digest, secret)
    known.add_token(token)
    signature = token.rpartition(".")[2]
    lines = [
        ("whole secret", f"client_secret={secret} refused"),
        ("secret in json", json.dumps({"message": "x", "client_secret": secret})),
        ("secret beyond prefix", f"prefix={secret[:20]}"),
        ("secret fragment", f"body {secret[30:50]} end"),
        ("unknown secret", "client_secret=ascs_" + "A" * 54),
        ("hash", f"stored hash={digest}"),
        ("hash fragment", f"h={digest[10:30]}"),
        ("token", f"Authorization: Bearer {token}"),
        ("unknown token", f"Bearer {fake_token('jti-2')}"),
        ("token signature", f"sig={signature}"),
        ("clean prefix", f"client authentication failed: client_id='{secret[:12]}…' reason='unknown client'"),
        ("clean prefix in path", f"DELETE /client/billing/secrets/{secret[:12]} 204"),
        ("clean", "token issued client_id='svc' scope='read' aud=['https://api'] jti=jti-1"),
        ("clean ids", f"key_id={secrets.token_hex(8)} jti={secrets.token_urlsafe(16)}"),
    ]
    leaks = scan(lines, known)
    assert [leak.source for leak in leaks] == [source for source, _ in lines if not source.startswith("clean")]
    by_source = {leak.source: leak for leak in leaks}
    assert by_source["whole secret"].what == f"a secret the suite made {secret[:12]}… (65 chars)"
    assert by_source["whole secret"].excerpt == f"client_secret={secret[:12]}<redacted> refused"
    assert by_source["unknown secret"].what == "secret-shaped ascs_AAAAAAA… (59 chars)"
    assert by_source["secret fragment"].what == f"fragment of secret {secret[:12]}…"
    assert by_source["hash"].what == f"fragment of hash of secret {secret[:12]}…"
    assert by_source["token"].what == "a token the suite made jti=jti-1"
    assert by_source["token"].excerpt == "Authorization: Bearer <redacted>"
    assert by_source["unknown token"].what == "JWT-shaped jti=jti-2"
    assert by_source["token signature"].what == "fragment of signature of token jti=jti-1"
    printed = "\n".join(f"{leak.what} {leak.excerpt}" for leak in leaks)
    assert not MORE_THAN_A_PREFIX.search(printed)
    assert secret[30:50] not in printed and digest[10:30] not in printed and signature[:16] not in printed


def test_scan_finds_api_keys_and_their_hashes_and_prints_none_of_them() -> None:
    known = Known()
    key = generate_api_key()
    digest = hmac.new(secrets.token_bytes(32), key.encode(), hashlib.sha256).hexdigest()
    known.add_secret(key)
    known.add_hash(digest, key)
    lines = [
        ("whole key", f"Authorization: Bearer {key}"),
        ("key beyond prefix", f"prefix={key[:20]}"),
        ("key fragment", f"body {key[30:50]} end"),
        ("unknown key", "token=asak_" + "B" * 60),
        ("key hash", f"h={digest[5:30]}"),
        ("clean prefix", f"API key revoked by its client client_id='svc' prefix={key[:12]}"),
    ]
    leaks = scan(lines, known)
    assert [leak.source for leak in leaks] == [source for source, _ in lines if not source.startswith("clean")]
    by_source = {leak.source: leak for leak in leaks}
    assert by_source["whole key"].what == f"an API key the suite made {key[:12]}… (65 chars)"
    assert by_source["whole key"].excerpt == f"Authorization: Bearer {key[:12]}<redacted>"
    assert by_source["unknown key"].what == "API key-shaped asak_BBBBBBB… (65 chars)"
    assert by_source["key fragment"].what == f"fragment of API key {key[:12]}…"
    assert by_source["key hash"].what == f"fragment of hash of API key {key[:12]}…"
    printed = "\n".join(f"{leak.what} {leak.excerpt}" for leak in leaks)
    assert "asak_" + key[5:20] not in printed and key[30:50] not in printed and digest[10:30] not in printed


def test_scan_finds_certificates_whole_or_in_fragments() -> None:
    from urllib.parse import quote

    from tests import pki

    known = Known()
    for _ in range(20):  # a certificate whose signature's base64 has a run of 20 without "+" or "/"
        issued = pki.self_signed()
        encoded = base64.b64encode(issued.der()).decode()
        run = max(re.findall(r"[A-Za-z0-9_-]+", encoded[-len(issued.certificate.signature) * 4 // 3:]), key=len)
        if len(run) >= 20:
            break
    known.add_certificate(issued.der(), issued.certificate.signature)
    lines = [
        ("pem", issued.pem().decode()),
        ("nginx header", f"X-SSL-Client-Cert: {quote(issued.pem().decode(), safe='')}"),
        ("rfc 9440 header", f"Client-Cert: :{encoded}:"),
        ("unknown der", "x5c=" + "MIIB" + "A" * 70),
        ("fragment", f"reason={run[:20]}"),
        ("clean thumbprint", "cnf x5t#S256=" + _b64(hashlib.sha256(issued.der()).digest())),
        ("clean reason", "tls_client_auth: certificate does not carry the registered tls_client_auth_san_dns"),
    ]
    leaks = scan(lines, known)
    assert [leak.source for leak in leaks] == [source for source, _ in lines if not source.startswith("clean")]
    printed = "\n".join(f"{leak.what} {leak.excerpt}" for leak in leaks)
    assert run[:20] not in printed and encoded[:40] not in printed


def test_the_session_records_every_api_key_the_suite_made(make_client: Any, request: pytest.FixtureRequest) -> None:
    from clients.services import api_key_create

    check = request.config.pluginmanager.get_plugin("leakcheck")
    assert isinstance(check, LeakCheck)
    client, _ = make_client()
    issued = api_key_create(client=client, name="cron")
    assert issued.api_key in check.known.api_keys
    assert hash_secret(issued.api_key)[1] in check.known.hashes


def test_log_files_are_read_line_by_line() -> None:
    known, secret = Known(), generate_secret()
    # Not under the session's basetemp, whose *.log files the session's own check reads.
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "node-a").mkdir()
        (Path(directory) / "node-a" / "gunicorn.log").write_text(f"started\nrefused {secret}\n")
        (Path(directory) / "notes.txt").write_text(secret)
        leaks = scan(read_log_files(Path(directory)), known)
    assert [(leak.source, leak.excerpt) for leak in leaks] == [
        ("node-a/gunicorn.log:2", f"refused {secret[:12]}<redacted>")
    ]


def test_the_session_captures_what_production_logs_and_records_what_the_suite_made(
    make_client: Any, http: Any, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    check = request.config.pluginmanager.get_plugin("leakcheck")
    assert isinstance(check, LeakCheck) and check.handler is not None and check.handler in logging.root.handlers
    client, secret = make_client(allowed_scopes=["read"])
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret))
    token = json.loads(response.content)["access_token"]
    assert_oauth_error(
        post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret[:-1])),
        401, "invalid_client",
    )
    caplog.set_level(logging.DEBUG, logger="oauthlib")
    logging.getLogger("oauthlib.oauth2").debug("below production's level")

    mine = [(source, text) for source, text in check.handler.production if request.node.nodeid in source]
    jti = jwt_claims(token)["jti"]
    assert any(s.startswith("logger authserver.tokens INFO") and f"jti={jti}" in t for s, t in mine)
    assert any(s.startswith("logger authserver.client_auth WARNING") and "authentication failed" in t for s, t in mine)
    assert not any("below production's level" in text for _, text in mine)
    assert any("below production's level" in text for _, text in check.handler.below_level)
    assert secret in check.known.secrets and token in check.known.tokens
    assert client.secrets.get().hash in check.known.hashes


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_a_leak_fails_the_session_and_the_report_hides_the_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    pytester.makeconftest('pytest_plugins = ["tests.leakcheck"]')
    pytester.makepyfile(
        test_leaky="""
        import logging
        from pathlib import Path

        from clients.secrets import generate_secret

        def test_leaks():
            secret = generate_secret()
            Path("prefix.txt").write_text(secret[:12])
            logging.getLogger("authserver.example").warning("created %s", secret)
        """
    )
    result = pytester.runpytest_subprocess("--ds=authserver.settings", "-p", "no:cacheprovider")
    prefix = (pytester.path / "prefix.txt").read_text()
    result.stdout.fnmatch_lines([
        "*= leakcheck: secrets or tokens in logs =*",
        f"logger authserver.example WARNING in test_leaky.py::test_leaks: a secret the suite made {prefix}… (65 chars)",
        f"*WARNING authserver.example created {prefix}<redacted>",
        "leakcheck: 1 log lines + 0 log files scanned for 1 secrets, 0 API keys, 0 hashes, 0 tokens, 0 certificates: "
        "1 LEAKS",
        "*1 passed*",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not MORE_THAN_A_PREFIX.search(result.stdout.str() + result.stderr.str())
