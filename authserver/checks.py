"""Configuration checks: misconfiguration fails here, before the first request.

They run with every management command (Django's system checks) and, through
``refuse_to_start_if_misconfigured``, when a WSGI server loads the application.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from authserver.durations import parse_duration, parse_rate

SUPPORTED_SIGNING_ALGS = ("ES256", "RS256", "EdDSA")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _secret_key_is_insecure(key: str) -> bool:
    return key == settings.INSECURE_SECRET_KEY or key.startswith("django-insecure") or len(key) < 32


@register()
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.DEBUG and _secret_key_is_insecure(settings.SECRET_KEY):
        messages.append(
            Error(
                "SECRET_KEY is the insecure development default (or shorter than 32 characters).",
                hint="Set SECRET_KEY in the environment, e.g. to the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="authserver.E001",
            )
        )
    issuer = urlsplit(settings.ISSUER)
    if not settings.ISSUER:
        if not settings.DEBUG:
            messages.append(
                Error(
                    "ISSUER is not set.",
                    hint="Set ISSUER to the public base URL, e.g. https://auth.example.com.",
                    id="authserver.E002",
                )
            )
    elif (
        issuer.scheme not in ("http", "https")
        or not issuer.hostname
        or issuer.path not in ("", "/")
        or issuer.query
        or issuer.fragment
    ):
        messages.append(
            Error(
                f"ISSUER {settings.ISSUER!r} is not an http(s) base URL without path, query or fragment.",
                hint="RFC 8414 §2: metadata is served at the issuer's root.",
                id="authserver.E003",
            )
        )
    elif issuer.scheme == "http" and not settings.DEBUG and not _is_loopback(issuer.hostname):
        messages.append(
            Error(
                f"ISSUER {settings.ISSUER!r} is not https.",
                hint="RFC 6749 §3.2 and RFC 8414 §2 require TLS; http is allowed only on loopback.",
                id="authserver.E006",
            )
        )
    if settings.SECRET_HASH_KEY and len(settings.SECRET_HASH_KEY) < 32:
        messages.append(
            Error("SECRET_HASH_KEY must be at least 32 characters long.", id="authserver.E004")
        )
    if settings.SIGNING_ALG not in SUPPORTED_SIGNING_ALGS:
        messages.append(
            Error(
                f"SIGNING_ALG {settings.SIGNING_ALG!r} is not supported.",
                hint=f"Use one of {', '.join(SUPPORTED_SIGNING_ALGS)}.",
                id="authserver.E005",
            )
        )
    invalid_metrics_cidrs = [cidr for cidr in settings.METRICS_ALLOWED_IPS if not _is_cidr(cidr)]
    if invalid_metrics_cidrs:
        messages.append(
            Error(
                f"METRICS_ALLOWED_IPS holds what is not a CIDR: {', '.join(map(repr, invalid_metrics_cidrs))}.",
                hint="Comma-separated addresses or networks, e.g. 127.0.0.0/8,::1,10.0.0.0/8.",
                id="authserver.E007",
            )
        )
    for name in ("FAILED_AUTH_RATE_PER_IP", "FAILED_AUTH_RATE_PER_CLIENT"):
        try:
            parse_rate(getattr(settings, name))
        except ValueError as error:
            messages.append(
                Error(f"{name}: {error}.", hint="e.g. 100/m, 10/m, 1000/h, 5/10m, or off.", id="authserver.E008")
            )
    if settings.CLIENT_ASSERTION_AUDIENCE not in ("any", "issuer"):
        messages.append(
            Error(
                f"CLIENT_ASSERTION_AUDIENCE is {settings.CLIENT_ASSERTION_AUDIENCE!r}.",
                hint='"any" (the issuer, the token endpoint or the endpoint called) or "issuer" (the issuer alone).',
                id="authserver.E011",
            )
        )
    messages.extend(_check_api_key_lifetimes())
    messages.extend(_check_mtls())
    if not settings.SECRET_HASH_KEY and not settings.DEBUG:
        messages.append(
            Warning(
                "SECRET_HASH_KEY is not set; client secrets are hashed with a key derived "
                "from SECRET_KEY, so rotating SECRET_KEY would void every client secret.",
                hint="Set SECRET_HASH_KEY (at least 32 characters) in the environment.",
                id="authserver.W001",
            )
        )
    return messages


def _check_api_key_lifetimes() -> list[CheckMessage]:
    lifetimes: dict[str, int] = {}
    messages: list[CheckMessage] = []
    for name in ("API_KEY_DEFAULT_LIFETIME", "API_KEY_MAX_LIFETIME"):
        try:
            lifetimes[name] = parse_duration(getattr(settings, name))
        except ValueError as error:
            messages.append(Error(f"{name}: {error}.", hint="e.g. 90d, 12h, 3600.", id="authserver.E009"))
    if len(lifetimes) == 2 and lifetimes["API_KEY_DEFAULT_LIFETIME"] > lifetimes["API_KEY_MAX_LIFETIME"]:
        messages.append(
            Error(
                "API_KEY_DEFAULT_LIFETIME is longer than API_KEY_MAX_LIFETIME.",
                hint="The default lifetime of an API key must be within the maximum.", id="authserver.E010",
            )
        )
    return messages


def _check_mtls() -> list[CheckMessage]:
    """MTLS_TRUSTED_CA_FILE, when set, must hold at least one PEM certificate; a client
    certificate header is only believed from TRUSTED_PROXIES, so without any it is never read."""
    messages: list[CheckMessage] = []
    path = settings.MTLS_TRUSTED_CA_FILE
    if path:
        try:
            with open(path, "rb") as file:
                x509.load_pem_x509_certificates(file.read())
        except (OSError, ValueError) as error:
            messages.append(
                Error(
                    f"MTLS_TRUSTED_CA_FILE {path!r} is not a readable PEM file of CA certificates "
                    f"({type(error).__name__}).",
                    hint="The CAs that tls_client_auth certificates must chain to, PEM, one or more.",
                    id="authserver.E012",
                )
            )
    header = settings.MTLS_CLIENT_CERT_HEADER
    if header and not all(c.isalnum() or c == "-" for c in header):
        messages.append(
            Error(
                f"MTLS_CLIENT_CERT_HEADER {header!r} is not a header name of letters, digits and '-'.",
                hint="e.g. X-SSL-Client-Cert (a header with '_' never reaches the application).",
                id="authserver.E013",
            )
        )
    return messages


def refuse_to_start_if_misconfigured() -> None:
    """Raise ``ImproperlyConfigured`` listing every configuration error."""
    errors = [m for m in check_configuration() if m.is_serious()]
    if errors:
        raise ImproperlyConfigured(
            "; ".join(f"{m.id}: {m.msg} {m.hint or ''}".strip() for m in errors)
        )
