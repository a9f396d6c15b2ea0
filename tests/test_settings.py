"""Configuration: durations, system checks, and refusing to start insecurely."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from authserver.checks import check_configuration
from authserver.durations import parse_duration, parse_rate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("value", "seconds"), [("300", 300), ("90s", 90), ("10m", 600), ("1h", 3600), ("2d", 172800), (45, 45)]
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "0", "-5", "5x", "1.5h", "h", "10 minutes", True])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def ids(settings) -> set[str]:
    return {message.id for message in check_configuration()}


def test_insecure_secret_key_fails_check_only_without_debug(settings):
    settings.SECRET_KEY = settings.INSECURE_SECRET_KEY
    settings.DEBUG = False
    assert "authserver.E001" in ids(settings)
    settings.DEBUG = True
    assert "authserver.E001" not in ids(settings)


@pytest.mark.parametrize(
    ("issuer", "error"),
    [
        ("", "authserver.E002"),
        ("ftp://x", "authserver.E003"),
        ("https://a/?q=1", "authserver.E003"),
        ("x", "authserver.E003"),
        ("https://a.example.com/auth", "authserver.E003"),
        ("http://auth.example.com", "authserver.E006"),
    ],
)
def test_bad_issuer(settings, issuer, error):
    settings.DEBUG = False
    settings.ISSUER = issuer
    assert error in ids(settings)


def test_short_hash_key_and_unknown_algorithm(settings):
    settings.SECRET_HASH_KEY = "short"
    settings.SIGNING_ALG = "HS256"
    assert {"authserver.E004", "authserver.E005"} <= ids(settings)


@pytest.mark.parametrize("rate", ["10", "10/x", "0/m", "ten/m", "10/0m", "", "10/m/h"])
@pytest.mark.parametrize("name", ["FAILED_AUTH_RATE_PER_IP", "FAILED_AUTH_RATE_PER_CLIENT"])
def test_malformed_rate_fails_a_check(settings, name, rate):
    setattr(settings, name, rate)
    assert "authserver.E008" in ids(settings)


@pytest.mark.parametrize("rate", ["100/m", "10/s", "1000/h", "5/d", "5/10m", " 3 / m ", "off", "OFF"])
def test_rates_as_operators_write_them(settings, rate):
    settings.FAILED_AUTH_RATE_PER_IP = rate
    assert "authserver.E008" not in ids(settings)


@pytest.mark.parametrize("value", ["", "0", "ninety days", "90 d x", "-1d"])
@pytest.mark.parametrize("name", ["API_KEY_DEFAULT_LIFETIME", "API_KEY_MAX_LIFETIME"])
def test_malformed_api_key_lifetime_fails_a_check(settings, name, value):
    setattr(settings, name, value)
    messages = [m for m in check_configuration() if m.id == "authserver.E009"]
    assert [m.msg.split(":")[0] for m in messages] == [name]


def test_api_key_default_lifetime_beyond_the_maximum_fails_a_check(settings):
    settings.API_KEY_DEFAULT_LIFETIME, settings.API_KEY_MAX_LIFETIME = "31d", "30d"
    assert "authserver.E010" in ids(settings)
    settings.API_KEY_DEFAULT_LIFETIME = "30d"
    assert not {"authserver.E009", "authserver.E010"} & ids(settings)


@pytest.mark.parametrize("content", [
    None, b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
])
def test_an_unusable_mtls_trusted_ca_file_fails_a_check(settings, tmp_path, content):
    path = tmp_path / "cas.pem"
    if content is not None:  # None: the file does not exist
        path.write_bytes(content)
    settings.MTLS_TRUSTED_CA_FILE = str(path)
    assert "authserver.E012" in ids(settings)
    from tests import pki

    path.write_bytes(pki.make_ca().pem())
    assert "authserver.E012" not in ids(settings)


@pytest.mark.parametrize("header", ["X_SSL_Client_Cert", "X-SSL Client-Cert", "Client-Cert:"])
def test_a_client_cert_header_name_nginx_or_wsgi_would_drop_fails_a_check(settings, header):
    settings.MTLS_CLIENT_CERT_HEADER = header
    assert "authserver.E013" in ids(settings)
    settings.MTLS_CLIENT_CERT_HEADER = "X-SSL-Client-Cert"
    assert "authserver.E013" not in ids(settings)


def test_api_key_lifetimes_come_from_the_environment():
    env = {**os.environ, "API_KEY_DEFAULT_LIFETIME": "12h", "API_KEY_MAX_LIFETIME": "7d", "DEBUG": "1"}
    code = "from clients.services import api_key_lifetimes; print(api_key_lifetimes())"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, capture_output=True, text=True,
        env={**env, "DJANGO_SETTINGS_MODULE": "authserver.settings"}, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(43200, 604800)"


def test_a_malformed_api_key_lifetime_stops_the_server():
    good = {"ISSUER": "https://auth.example.com", "SECRET_KEY": "s" * 60, "SECRET_HASH_KEY": "h" * 64}
    result = _load_wsgi({**good, "API_KEY_MAX_LIFETIME": "forever"})
    assert result.returncode != 0
    assert "authserver.E009: API_KEY_MAX_LIFETIME" in result.stderr
    result = _load_wsgi({**good, "API_KEY_DEFAULT_LIFETIME": "2d", "API_KEY_MAX_LIFETIME": "1d"})
    assert result.returncode != 0
    assert "authserver.E010" in result.stderr


def test_parse_rate():
    assert parse_rate("100/m") == (100, 60)
    assert parse_rate("5/10m") == (5, 600)
    assert parse_rate("2/d") == (2, 86400)
    assert parse_rate("off") is None


def test_missing_hash_key_warns(settings):
    settings.DEBUG = False
    settings.SECRET_HASH_KEY = ""
    assert "authserver.W001" in ids(settings)


def _load_wsgi(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ISSUER", "SECRET_HASH_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import authserver.wsgi"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_server_refuses_to_start_on_insecure_secret_key():
    result = _load_wsgi({"ISSUER": "https://auth.example.com"})
    assert result.returncode != 0
    assert "authserver.E001" in result.stderr


def test_server_starts_with_proper_configuration():
    result = _load_wsgi({"ISSUER": "https://auth.example.com", "SECRET_KEY": "s" * 60, "SECRET_HASH_KEY": "h" * 64})
    assert result.returncode == 0, result.stderr


def test_https_issuer_turns_on_secure_cookies_and_hsts():
    code = (
        "from django.conf import settings as s; import django; django.setup();"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"ISSUER"}}
    for issuer, expected in (
        ("https://auth.example.com", "True True True"),
        ("http://127.0.0.1:8000", "False False False"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**clean, "ISSUER": issuer, "DJANGO_SETTINGS_MODULE": "authserver.settings"},
        )
        assert result.stdout.strip() == expected, result.stderr


@pytest.mark.django_db
def test_models_and_migrations_agree():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://a.b"]
)
def test_good_issuers(settings, issuer):
    settings.DEBUG = False
    settings.ISSUER = issuer
    assert not {"authserver.E002", "authserver.E003", "authserver.E006"} & ids(settings)


# README's "Production" settings (values made up, shapes as documented there).
PRODUCTION = {
    "ISSUER": "https://auth.example.com",
    "ALLOWED_HOSTS": "auth.example.com",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SECRET_HASH_KEY": secrets.token_hex(32),
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_deploy_check_is_clean_with_readmes_production_settings(tmp_path):
    """``manage.py check --deploy`` with README's production environment: no warning at all."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", *PRODUCTION}}
    env = {**clean, **PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
    readme = (ROOT / "README.md").read_text()
    production = readme[readme.index("## Production"):readme.index("### HTTP limits")]
    for name in PRODUCTION:
        assert name in production, f"README's Production section does not set {name}"
