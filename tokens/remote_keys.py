"""JWK Sets fetched from URLs an operator registered: a client's ``jwks_uri`` (DESIGN §9.1)
and a trusted issuer's keys (§9.2), found through its OpenID discovery document unless
registered.

Every fetch is bounded: 2 s in all, no redirects (a registered URL must not become a way
to reach elsewhere), at most 64 KiB read.  A set is cached for its ``Cache-Control``
``max-age``, kept between 1 minute and 24 hours (5 minutes without one).  An unknown
``kid`` refetches at once, then at most once per 30 s per URL while kids stay unknown, so
a flood of made-up kids is not turned into outbound traffic.  While a URL is unreachable
its cached keys keep working, for at most 24 hours after they were fetched, and never after
it answers 404 or 410 (the keys were withdrawn); a URL that has never answered is retried at
most every few seconds, so callers are not each made to wait for the timeout.

These are public keys, not security state: each process caches its own, like the
signing keys' JWKS (``tokens.keys``).  Used ``jti``s, which are, live in
``tokens.shared_state``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import requests

from clients.jwks import MAX_JWKS_BYTES, InvalidKeySet, PublicKey, parse_key_set, url_problem

log = logging.getLogger("authserver.remote_keys")

TIMEOUT_SECONDS = 2.0
MIN_CACHE_SECONDS = 60
MAX_CACHE_SECONDS = 24 * 3600
DEFAULT_CACHE_SECONDS = 300
UNKNOWN_KID_REFETCH_SECONDS = 30
# After a failed fetch: how long until the URL is tried again.
RETRY_SECONDS_WITH_KEYS = 30
RETRY_SECONDS_WITHOUT_KEYS = 5
MAX_URLS = 10_000
# While a URL fails, its keys stay in use this long after they were fetched, no longer.
MAX_STALE_SECONDS = 24 * 3600
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class FetchFailed(Exception):
    """The document could not be had; the message (no document content) says why."""


class KeysGone(FetchFailed):
    """The URL answered 404 or 410: whatever was cached from it must no longer be trusted."""


class KeysUnavailable(Exception):
    """No keys for this URL: never fetched successfully, and the last attempt failed."""


@dataclass
class _Entry:
    keys: tuple[PublicKey, ...] | None  # None: never fetched successfully
    fresh_until: float
    unknown_kid_refetch_at: float = field(default=-float("inf"))
    fetched_at: float = 0.0  # when ``keys`` were last fetched


_lock = threading.Lock()
_entries: dict[str, _Entry] = {}
_session = requests.Session()
_session.trust_env = False  # no proxy from the environment: the URL is reached directly


def reset() -> None:
    """Forget every cached set (tests)."""
    with _lock:
        _entries.clear()
        _discovered.clear()


def cache_seconds(cache_control: str | None) -> int:
    """How long to keep a response with this ``Cache-Control``, within the bounds."""
    if cache_control:
        if re.search(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", cache_control, re.IGNORECASE):
            return MIN_CACHE_SECONDS
        match = _MAX_AGE.search(cache_control)
        if match:
            return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, int(match.group(1))))
    return DEFAULT_CACHE_SECONDS


class _Fetchers:
    """A few threads per process that do the fetching, so the caller can stop waiting at the
    deadline whatever the remote does (``requests``' timeout bounds each read, not the whole:
    a server dripping a byte a second, or a slow DNS answer, would hold the caller).  Made
    on first use in each process, never inherited across gunicorn's fork."""

    def __init__(self) -> None:
        self.pid = -1
        self.pool: ThreadPoolExecutor | None = None

    def submit(self, url: str, deadline: float) -> Future[tuple[bytes, int]]:
        with _lock:
            if self.pool is None or self.pid != os.getpid():
                self.pool, self.pid = ThreadPoolExecutor(max_workers=4, thread_name_prefix="remote-keys"), os.getpid()
            return self.pool.submit(_get, url, deadline)


_fetchers = _Fetchers()


def _get(url: str, deadline: float) -> tuple[bytes, int]:
    """The fetch itself, in a fetcher thread: it too gives up at the deadline once data flows."""
    try:
        with _session.get(
            url, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True,
            headers={"Accept": "application/json, application/jwk-set+json"},
        ) as response:
            if response.status_code in (404, 410):
                raise KeysGone(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise FetchFailed(f"HTTP {response.status_code}")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_JWKS_BYTES:
                raise FetchFailed(f"larger than {MAX_JWKS_BYTES} bytes")
            body = bytearray()
            for chunk in response.iter_content(chunk_size=1024):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise FetchFailed(f"larger than {MAX_JWKS_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise FetchFailed(f"slower than {TIMEOUT_SECONDS:g} s")
            return bytes(body), cache_seconds(response.headers.get("Cache-Control"))
    except requests.RequestException as error:
        raise FetchFailed(type(error).__name__) from None


def fetch_json(url: str) -> tuple[object, int]:
    """GET ``url`` as JSON within the limits, 2 s in all (DNS, connection, headers and body);
    return the document and its cache lifetime.  Raises ``FetchFailed`` (``KeysGone`` for
    a 404 or 410: the keys were withdrawn)."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    future = _fetchers.submit(url, deadline)
    try:
        body, lifetime = future.result(timeout=TIMEOUT_SECONDS)
    except FutureTimeout:
        future.cancel()
        raise FetchFailed(f"slower than {TIMEOUT_SECONDS:g} s") from None
    try:
        return json.loads(body), lifetime
    except (ValueError, RecursionError):
        raise FetchFailed("not JSON") from None


def _fetch_keys(url: str) -> tuple[tuple[PublicKey, ...], int]:
    document, lifetime = fetch_json(url)
    try:
        return parse_key_set(document, strict=False), lifetime
    except InvalidKeySet as error:
        raise FetchFailed(str(error)) from None


def _refresh(url: str, entry: _Entry | None, now: float) -> _Entry:
    """Fetch ``url`` again; on failure keep what was cached and back off."""
    try:
        keys, lifetime = _fetch_keys(url)
    except FetchFailed as error:
        cached, fetched_at = (entry.keys, entry.fetched_at) if entry is not None else (None, 0.0)
        if isinstance(error, KeysGone) or now - fetched_at > MAX_STALE_SECONDS:
            cached = None  # withdrawn, or too old to trust any longer
        log.warning("JWK Set not fetched: url=%s reason=%s cached_keys=%s", url, error, cached is not None)
        retry = RETRY_SECONDS_WITH_KEYS if cached is not None else RETRY_SECONDS_WITHOUT_KEYS
        fresh = _Entry(keys=cached, fresh_until=now + retry, fetched_at=fetched_at)
    else:
        fresh = _Entry(keys=keys, fresh_until=now + lifetime, fetched_at=now)
    if entry is not None:
        fresh.unknown_kid_refetch_at = entry.unknown_kid_refetch_at
    with _lock:
        if len(_entries) >= MAX_URLS and url not in _entries:
            _entries.pop(next(iter(_entries)))
        _entries[url] = fresh
    return fresh


def keys(url: str, *, kid: str | None) -> tuple[PublicKey, ...]:
    """The keys published at ``url``, fetched or cached; an unknown ``kid`` may refetch.

    Raises ``KeysUnavailable`` when there are none to offer.
    """
    now = time.monotonic()
    entry = _entries.get(url)
    fetched = entry is None or now >= entry.fresh_until
    if fetched:
        entry = _refresh(url, entry, now)
    assert entry is not None
    if (
        not fetched and kid is not None and entry.keys is not None and all(key.kid != kid for key in entry.keys)
        and now - entry.unknown_kid_refetch_at >= UNKNOWN_KID_REFETCH_SECONDS
    ):
        entry.unknown_kid_refetch_at = now
        entry = _refresh(url, entry, now)
    if entry.keys is None:
        raise KeysUnavailable(url)
    return entry.keys


# --- OpenID discovery of an issuer's keys (DESIGN §9.2) ----------------------------------------


@dataclass
class _Discovered:
    jwks_uri: str | None  # None: never discovered
    fresh_until: float


_discovered: dict[str, _Discovered] = {}


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery §4: the trailing ``/`` of the issuer goes before appending."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _discover(issuer: str) -> tuple[str, int]:
    document, lifetime = fetch_json(discovery_url(issuer))
    if not isinstance(document, dict):
        raise FetchFailed("discovery document is not a JSON object")
    if document.get("issuer") not in (issuer, issuer.rstrip("/")):
        raise FetchFailed("discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or url_problem(jwks_uri):
        raise FetchFailed("discovery document has no usable jwks_uri")
    return jwks_uri, lifetime


def discovered_jwks_uri(issuer: str) -> str:
    """The ``jwks_uri`` an issuer's discovery document names, fetched or cached like key sets.

    Raises ``KeysUnavailable`` when it has never been had and cannot be now.
    """
    now = time.monotonic()
    entry = _discovered.get(issuer)
    if entry is None or now >= entry.fresh_until:
        try:
            jwks_uri, lifetime = _discover(issuer)
        except FetchFailed as error:
            cached = entry.jwks_uri if entry is not None else None
            log.warning("issuer discovery failed: issuer=%s reason=%s cached=%s", issuer, error, cached is not None)
            retry = RETRY_SECONDS_WITH_KEYS if cached is not None else RETRY_SECONDS_WITHOUT_KEYS
            entry = _Discovered(jwks_uri=cached, fresh_until=now + retry)
        else:
            entry = _Discovered(jwks_uri=jwks_uri, fresh_until=now + lifetime)
        with _lock:
            if len(_discovered) >= MAX_URLS and issuer not in _discovered:
                _discovered.pop(next(iter(_discovered)))
            _discovered[issuer] = entry
    if entry.jwks_uri is None:
        raise KeysUnavailable(issuer)
    return entry.jwks_uri
