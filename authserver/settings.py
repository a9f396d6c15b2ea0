"""Django settings for authserver.

This is the only module that reads the environment; the rest of the code reads
``django.conf.settings``. Every variable is optional for a local run; README lists them all.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ

from authserver.durations import parse_duration

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# A fixed, recognisable development key: with DEBUG off the server refuses it
# (authserver.checks), so it can never protect a production deployment.
INSECURE_SECRET_KEY = "django-insecure-authserver-development-only-do-not-deploy"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)

# Keyed hash for client secrets (clients.secrets). Unset: derived from SECRET_KEY
# with HKDF, and a system check warns that rotating SECRET_KEY voids every secret.
SECRET_HASH_KEY = env.str("SECRET_HASH_KEY", default="")
# Earlier hash keys, comma-separated, still accepted for secrets hashed with them.
SECRET_HASH_OLD_KEYS = env.list("SECRET_HASH_OLD_KEYS", default=[])

# Public base URL: `iss` of every token and the base of every URL in the metadata.
# Never derived from the Host header. Required with DEBUG off.
ISSUER = env.str("ISSUER", default="http://127.0.0.1:8000" if DEBUG else "").rstrip("/")
_issuer = urlsplit(ISSUER)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
if _issuer.hostname and _issuer.hostname not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_issuer.hostname)

# Token lifetimes and signing.
ACCESS_TOKEN_TTL = parse_duration(env.str("ACCESS_TOKEN_TTL", default="1h"))
SIGNING_ALG = env.str("SIGNING_ALG", default="ES256")
# Optional passphrase that encrypts private signing keys at rest in the database.
SIGNING_KEY_ENCRYPTION_KEY = env.str("SIGNING_KEY_ENCRYPTION_KEY", default="")
# How often a worker process looks for a rotated key set.
SIGNING_KEY_REFRESH_SECONDS = parse_duration(env.str("SIGNING_KEY_REFRESH", default="5s"))
# Default `aud` for clients without allowed audiences (RFC 9068 requires one); empty: ISSUER.
DEFAULT_AUDIENCE = env.str("DEFAULT_AUDIENCE", default="")

# private_key_jwt (RFC 7523): which `aud` a client assertion may name ("any": the issuer, the
# token endpoint or the endpoint called; "issuer": the issuer alone, as rfc7523bis asks), and
# how far ahead its `exp` may lie.
CLIENT_ASSERTION_AUDIENCE = env.str("CLIENT_ASSERTION_AUDIENCE", default="any").strip().lower()
CLIENT_ASSERTION_MAX_LIFETIME = parse_duration(env.str("CLIENT_ASSERTION_MAX_LIFETIME", default="1h"))

# DPoP (RFC 9449 §8): demand a nonce this server issued in every proof.
DPOP_NONCE = env.bool("DPOP_NONCE", default=False)

# Proxies whose X-Forwarded-For names the caller's address (IP allowlists) and whose
# client-certificate headers are believed (mTLS).
TRUSTED_PROXIES = tuple(
    ipaddress.ip_network(cidr, strict=False) for cidr in env.list("TRUSTED_PROXIES", default=[])
)

# mTLS (RFC 8705, DESIGN §9.4): the CAs (PEM) that tls_client_auth certificates must chain to,
# and the header a trusted proxy forwards the client certificate in.  Empty: RFC 9440's
# Client-Cert (and Client-Cert-Chain); a name: that header, holding a URL-encoded PEM
# certificate (nginx's $ssl_client_escaped_cert).
MTLS_TRUSTED_CA_FILE = env.str("MTLS_TRUSTED_CA_FILE", default="")
MTLS_CLIENT_CERT_HEADER = env.str("MTLS_CLIENT_CERT_HEADER", default="").strip()

# Brute-force limits on failed client authentication (DRF-style N/s|m|h|d, or "off").
FAILED_AUTH_RATE_PER_IP = env.str("FAILED_AUTH_RATE_PER_IP", default="100/m")
FAILED_AUTH_RATE_PER_CLIENT = env.str("FAILED_AUTH_RATE_PER_CLIENT", default="10/m")
# Where every worker and node keeps the security state they share (failure counters,
# lockouts, replay records): Redis when set, else the database (tokens.shared_state).
REDIS_URL = env.str("REDIS_URL", default="")

# API keys (DESIGN §9.5): lifetime when none is asked for, and the longest allowed
# (durations such as 90d; clients.services parses them, authserver.checks refuses bad ones).
API_KEY_DEFAULT_LIFETIME = env.str("API_KEY_DEFAULT_LIFETIME", default="90d")
API_KEY_MAX_LIFETIME = env.str("API_KEY_MAX_LIFETIME", default="365d")

# How long per-client hourly usage (tokens issued, failed authentications) is kept.
USAGE_RETENTION = parse_duration(env.str("USAGE_RETENTION", default="30d"))

# PostgreSQL: each worker LISTENs for registry changes, so token requests need no query
# (clients.changefeed). Turn off behind a transaction-pooling proxy (PgBouncer).
REGISTRY_CHANGE_FEED = env.bool("REGISTRY_CHANGE_FEED", default=True)

# Largest token-request body read; larger ones get 413 without being read.
TOKEN_REQUEST_MAX_BYTES = env.int("TOKEN_REQUEST_MAX_BYTES", default=16384)

# CIDRs served GET /metrics without a token, matched against the caller's address as resolved
# through TRUSTED_PROXIES; empty: bearer tokens with metrics:read only (authserver.checks
# refuses an invalid CIDR).
METRICS_ALLOWED_IPS = tuple(
    cidr.strip() for cidr in env.list("METRICS_ALLOWED_IPS", default=["127.0.0.0/8", "::1"]) if cidr.strip()
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "oauth2_provider",
    "clients",
    "tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clients.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "authserver.urls"
WSGI_APPLICATION = "authserver.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside a writer; NORMAL skips an fsync per commit
            # that WAL makes unnecessary for durability across application crashes.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

CACHES = {
    "default": env.cache_url(
        "CACHE_URL", default=env.str("REDIS_URL", default="locmemcache://")
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets straight from the apps when collectstatic has not run
# (the local run command), and from STATIC_ROOT when it has.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Cookies and HSTS follow the scheme the server is published under.
_https = _issuer.scheme == "https"
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _https else 0)
# Both commit every subdomain of the issuer's domain to HTTPS: the operator's call, off by default.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# The proxy in front redirects http to https. The app does not by default: a redirected POST
# to the token endpoint loses its body (RFC 9110 §15.4), and a load balancer's plain-http health
# checks would see 301s; so Django's deploy warning about it is silenced while it is off.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_SSL_REDIRECT else ["security.W008"]
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_FAILURE_VIEW = "authserver.errors.csrf_failure"
CSRF_TRUSTED_ORIGINS = [f"{_issuer.scheme}://{_issuer.netloc}"] if _issuer.netloc else []

# django-oauth-toolkit: our client registry replaces its Application model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "clients.Client"
# None of DOT's grants, token storage or redirects is served here (README: Decisions); its
# RFC 9700 options are set to the compliant behaviour all the same, so that nothing DOT would
# ever do is the non-compliant default, and `check --deploy` has nothing to warn of.
OAUTH2_PROVIDER = {
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["authserver.parsers.SafeJSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tokens.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "authserver management API",
    "DESCRIPTION": "Manage OAuth 2.0 clients, their secrets, tenants, roles and trusted issuers.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING_CONFIG = "authserver.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"class": "authserver.logging.PlainFormatter",
                  "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "authserver.logging.JsonFormatter"},
    },
    "handlers": {
        # LOG_FORMAT=json: one JSON object per line (for log pipelines); plain: for people.
        "console": {"class": "logging.StreamHandler", "formatter": env.str("LOG_FORMAT", default="plain")},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "authserver": {"level": env.str("LOG_LEVEL", default="INFO"), "propagate": True},
        # oauthlib logs whole issued tokens at DEBUG: never let it below WARNING.
        "oauthlib": {"level": "WARNING", "propagate": True},
        "oauth2_provider": {"level": "WARNING", "propagate": True},
        # Every refused token request is a 4xx; our own log line says why.
        "django.request": {"level": "ERROR", "propagate": True},
    },
}
