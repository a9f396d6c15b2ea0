"""Leak check: no client secret, API key, secret or key hash, access token, assertion, DPoP proof or
certificate in any log line of the session.

The rule: "Secrets, API keys, their hashes, tokens, assertions and certificates never appear in any
log line."  For the whole
test session this plugin

- keeps every log record the test process emits, formatted as production would write it
  (the configured console formatter, and the JSON one for ``LOG_FORMAT=json``, both with
  exception text), on the root logger and on every logger that does not propagate;
- reads, at the end, every ``*.log`` file under the session's base temporary directory
  (the live gunicorn servers write their output and access logs there);
- records every secret, API key, hash and token the suite made or presented: in process by
  wrapping ``generate_secret``, ``generate_api_key``, ``hash_secret``, ``issue_access_token``,
  the parser of client assertions and workload tokens (``tokens.private_key_jwt.parse``) and
  every certificate the test PKI makes (``tests.pki``);
  in subprocesses from their output (``createclient --json``, ``createapikey --json``), from
  ``requests`` responses and from the
  ``SECRET_HASH_KEY`` in their environment, so their hashes are known too;

and fails the session, naming each log source with a redacted excerpt, when a log holds a
secret- or key-shaped string longer than the 12-character prefix we do log, a JWT, a certificate,
or a fragment (19 characters or more) of any recorded secret beyond its prefix, token signature,
hash or certificate.

A record below the level production would log at (a test lowered a logger's level) is
scanned too, but a leak there is reported as a note and does not fail the session.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from authserver.logging import JsonFormatter

PREFIX_LENGTH = 12  # clients.secrets.PREFIX_LENGTH: the part of a secret or API key we do log
# A client secret (ascs_) or an API key (asak_): both are logged by prefix only.
SECRET_SHAPE = re.compile(r"(?:ascs|asak)_[A-Za-z0-9_-]*")
MARKERS = ("ascs_", "asak_")
API_KEY_MARKER = "asak_"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
# A certificate: PEM (plain or URL-encoded, as nginx forwards it) or base64 DER (RFC 9440's
# Client-Cert, a JWK's x5c), which starts with the DER of a long SEQUENCE: "MII".
# A PEM block is matched whole (to its END line, or to the end of the text), so that its report
# redacts every line of it.
CERTIFICATE_SHAPE = re.compile(
    r"-----BEGIN(?: |%20|\+)CERTIFICATE-----(?:(?!-----END).)*(?:-----END(?: |%20|\+)CERTIFICATE-----)?"
    r"|MII[A-Za-z0-9+/%]{60,}",
    re.DOTALL,
)
# Recorded values are indexed by WINDOW-character slices every STRIDE characters, so a
# log fragment of WINDOW + STRIDE - 1 characters or more of one of them is always found.
WINDOW = 16
STRIDE = 4
RUN = re.compile(rf"[A-Za-z0-9_-]{{{WINDOW},}}")
MAX_REPORTED = 25


@dataclass(frozen=True)
class Leak:
    source: str
    what: str
    excerpt: str


@dataclass
class Known:
    """Every secret, secret hash and token the suite made, indexed for fragment search."""

    secrets: set[str] = field(default_factory=set)
    api_keys: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    certificates: set[str] = field(default_factory=set)
    # Secrets and hash keys of other processes: their hashes are computed at the end.
    outside_secrets: set[str] = field(default_factory=set)
    outside_keys: set[tuple[str, tuple[str, ...], str]] = field(default_factory=set)
    windows: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _index(self, value: str, start: int, label: str) -> None:
        for at in range(start, len(value) - WINDOW + 1, STRIDE):
            self.windows.setdefault(value[at : at + WINDOW], label)

    def add_secret(self, secret: str, *, outside: bool = False) -> None:
        with self.lock:
            if outside:
                self.outside_secrets.add(secret)
            if secret not in self.secrets and secret not in self.api_keys:
                (self.api_keys if secret.startswith(API_KEY_MARKER) else self.secrets).add(secret)
                self._index(secret, PREFIX_LENGTH, f"{kind_of(secret)} {secret[:PREFIX_LENGTH]}…")

    def add_hash(self, digest: str, secret: str) -> None:
        with self.lock:
            if digest not in self.hashes:
                self.hashes.add(digest)
                self._index(digest, 0, f"hash of {kind_of(secret)} {secret[:PREFIX_LENGTH]}…")

    def add_token(self, token: str) -> None:
        with self.lock:
            if token not in self.tokens:
                self.tokens.add(token)
                signature = token.rpartition(".")[2]
                self._index(signature, 0, f"signature of token {describe_token(token)}")

    def add_certificate(self, der: bytes, signature: bytes) -> None:
        """A certificate a test made or presented, by the runs of the base64 DER of its signature,
        which ends the DER and which no public key shares (the key is logged by design, in JWKs)."""
        encoded = base64.b64encode(der).decode()
        tail = encoded[-(len(signature) * 4 // 3):]
        with self.lock:
            if encoded not in self.certificates:
                self.certificates.add(encoded)
                # The standard alphabet's "+" and "/" split it where a log's runs split too.
                for run in RUN.finditer(tail):
                    self._index(run[0], 0, f"certificate #{len(self.certificates)}")

    def add_outside_key(self, env: dict[str, str]) -> None:
        if env.get("SECRET_HASH_KEY") or env.get("SECRET_KEY"):
            old = tuple(k.strip() for k in env.get("SECRET_HASH_OLD_KEYS", "").split(",") if k.strip())
            with self.lock:
                self.outside_keys.add((env.get("SECRET_HASH_KEY", ""), old, env.get("SECRET_KEY", "")))

    def harvest(self, text: str, *, outside: bool = True) -> None:
        """Record the secrets and tokens in a process's output or a response body."""
        for match in SECRET_SHAPE.finditer(text):
            if len(match[0]) > PREFIX_LENGTH:
                self.add_secret(match[0], outside=outside)
        for match in JWT_SHAPE.finditer(text):
            self.add_token(match[0])

    def hash_outside_secrets(self) -> None:
        """Hashes of the secrets other processes made, under those processes' hash keys."""
        from clients.secrets import _hash_keys

        for current, old, secret_key in self.outside_keys:
            _, keys = _hash_keys(current, old, secret_key)
            for key in keys.values():
                for secret in self.outside_secrets:
                    self.add_hash(hmac.new(key.key, secret.encode(), "sha256").hexdigest(), secret)


def kind_of(value: str) -> str:
    return "API key" if value.startswith(API_KEY_MARKER) else "secret"


def describe_token(token: str) -> str:
    """``jti=…`` of a JWT (the server logs jti itself), never the token."""
    payload = token.split(".")[1] if token.count(".") else ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return f"jti={claims['jti']}"
    except (ValueError, KeyError, TypeError, binascii.Error):
        return "(no jti)"


def _leaks_in(text: str, known: Known) -> tuple[list[str], list[tuple[int, int]]]:
    """What ``text`` leaks, and the spans to redact."""
    found: list[str] = []
    spans: list[tuple[int, int]] = []
    reported: list[tuple[int, int]] = []
    for match in SECRET_SHAPE.finditer(text):
        if len(match[0]) > PREFIX_LENGTH:
            kind = kind_of(match[0])
            made = match[0] in known.secrets or match[0] in known.api_keys
            recorded = f"{'an' if kind == 'API key' else 'a'} {kind} the suite made" if made else f"{kind}-shaped"
            found.append(f"{recorded} {match[0][:PREFIX_LENGTH]}… ({len(match[0])} chars)")
            spans.append((match.start() + PREFIX_LENGTH, match.end()))
            reported.append(match.span())
    for match in JWT_SHAPE.finditer(text):
        recorded = "a token the suite made" if match[0] in known.tokens else "JWT-shaped"
        found.append(f"{recorded} {describe_token(match[0])}")
        spans.append(match.span())
        reported.append(match.span())
    for match in CERTIFICATE_SHAPE.finditer(text):
        found.append("a certificate (PEM or base64 DER)")
        spans.append(match.span())
        reported.append(match.span())
    if known.windows:
        for run in RUN.finditer(text):
            if any(start <= run.start() and run.end() <= end for start, end in reported):
                continue
            value = run[0]
            for at in range(len(value) - WINDOW + 1):
                label = known.windows.get(value[at : at + WINDOW])
                if label is not None:
                    found.append(f"fragment of {label}")
                    spans.append(run.span())
                    break
    return found, spans


def _redact(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    for start, end in reversed(merged):
        text = text[:start] + "<redacted>" + text[end:]
    return text


def scan(lines: Iterable[tuple[str, str]], known: Known) -> list[Leak]:
    """Leaks in ``(source, text)`` lines; each excerpt is redacted."""
    leaks = []
    for source, text in lines:
        if (
            not any(marker in text for marker in MARKERS) and "eyJ" not in text
            and not (known.windows and RUN.search(text))
        ):
            continue
        found, spans = _leaks_in(text, known)
        if not found:
            continue
        # A record comes formatted as each production formatter would write it: show one.
        excerpt = next((line for line in _redact(text, spans).splitlines() if "<redacted>" in line), "")
        if len(excerpt) > 300:
            first = excerpt.find("<redacted>")
            excerpt = "…" + excerpt[max(0, first - 150) : first + 150] + "…"
        if _leaks_in(excerpt, known)[0]:  # never print what we could not redact
            excerpt = "<excerpt withheld>"
        leaks.append(Leak(source=source, what="; ".join(sorted(set(found))), excerpt=excerpt))
    return leaks


def read_log_files(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(root.rglob("*.log")):
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace") as lines:
                for number, line in enumerate(lines, 1):
                    yield f"{path.relative_to(root)}:{number}", line.rstrip("\n")


class CapturingHandler(logging.Handler):
    """Keeps every record as production's handlers would write it."""

    def __init__(self, formatters: list[logging.Formatter]) -> None:
        super().__init__(logging.NOTSET)
        self.formatters = formatters
        self.levels = {
            name: logger.level for name, logger in logging.root.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.level
        }
        self.root_level = logging.root.level
        self._level_of: dict[str, int] = {}
        self.records = 0
        self.production: list[tuple[str, str]] = []
        self.below_level: list[tuple[str, str]] = []
        self.test = "(outside a test)"

    def production_level(self, name: str) -> int:
        """The level logger ``name`` had under the settings' LOGGING, before any test changed it."""
        if name not in self._level_of:
            parent = name
            while parent and parent not in self.levels:
                parent = parent.rpartition(".")[0]
            self._level_of[name] = self.levels[parent] if parent else self.root_level
        return self._level_of[name]

    def emit(self, record: logging.LogRecord) -> None:
        texts = []
        for formatter in self.formatters:
            try:
                texts.append(formatter.format(record))
            except Exception:  # a record production could not format still must not leak
                texts.append(repr(vars(record)))
        source = f"logger {record.name} {record.levelname} in {self.test}"
        if record.levelno >= self.production_level(record.name):
            self.records += 1
            bucket = self.production
        else:
            bucket = self.below_level
        bucket.append((source, "\n".join(texts)))


def _wrap(patch: pytest.MonkeyPatch, module: Any, name: str, record: Callable[..., None]) -> None:
    """Replace ``module.name`` everywhere it was already imported (modules imported later
    get the wrapper); ``record(result, *args, **kwargs)`` sees each call."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        record(result, *args, **kwargs)
        return result

    bound = [
        (holder, attr) for holder in list(sys.modules.values()) if holder is not None
        for attr, value in list(getattr(holder, "__dict__", {}).items()) if value is original
    ]
    for holder, attr in bound:
        patch.setattr(holder, attr, wrapper)


class LeakCheck:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.known = Known()
        self.handler: CapturingHandler | None = None
        self.attached: list[logging.Logger] = []
        self.patch = pytest.MonkeyPatch()
        self.leaks: list[Leak] = []
        self.notes: list[Leak] = []
        self.summary = ""

    # -- recording what the suite makes ---------------------------------------------------

    def _record_values(self) -> None:
        import requests

        import clients.secrets
        import tests.pki
        import tokens.issuing
        import tokens.private_key_jwt

        known = self.known

        def hashed(result: tuple[str, str], secret: str, *args: Any, **kwargs: Any) -> None:
            known.add_hash(result[1], secret)

        _wrap(self.patch, clients.secrets, "generate_secret", lambda secret: known.add_secret(secret))
        _wrap(self.patch, clients.secrets, "generate_api_key", lambda key: known.add_secret(key))
        _wrap(self.patch, clients.secrets, "hash_secret", hashed)
        _wrap(self.patch, tokens.issuing, "issue_access_token", lambda token, **_: known.add_token(token.access_token))
        # Client assertions and workload tokens, as the server reads them.
        _wrap(self.patch, tokens.private_key_jwt, "parse", lambda _, token: known.add_token(token))
        # Every certificate the test PKI makes (for the live servers behind nginx too).
        _wrap(self.patch, tests.pki, "_sign",
              lambda issued, *_, **__: known.add_certificate(issued.der(), issued.certificate.signature))

        send = requests.Session.send

        def harvesting_send(session: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
            response = send(session, request, **kwargs)
            content = b"" if kwargs.get("stream") else response.content
            if b"ascs_" in content or b"asak_" in content or b"eyJ" in content:
                known.harvest(response.content.decode("utf-8", "replace"))
            return response

        popen_init, communicate = subprocess.Popen.__init__, subprocess.Popen.communicate

        def keyed_init(process: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            if isinstance(kwargs.get("env"), dict):
                known.add_outside_key(kwargs["env"])
            popen_init(process, *args, **kwargs)

        def harvesting_communicate(process: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
            outputs = communicate(process, *args, **kwargs)
            for output in outputs:
                if output:
                    known.harvest(output.decode("utf-8", "replace") if isinstance(output, bytes) else output)
            return outputs

        self.patch.setattr(requests.Session, "send", harvesting_send)
        self.patch.setattr(subprocess.Popen, "__init__", keyed_init)
        self.patch.setattr(subprocess.Popen, "communicate", harvesting_communicate)

    # -- capturing logs -------------------------------------------------------------------

    def _attach(self) -> None:
        """Put the handler wherever production's handlers get records (again, if a test
        reconfigured logging)."""
        assert self.handler is not None
        targets = [logging.root] + [
            logger for logger in logging.root.manager.loggerDict.values()
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
        for logger in targets:
            if self.handler not in logger.handlers:
                logger.addHandler(self.handler)
                self.attached.append(logger)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Django (set up by pytest-django before conftest.py loads) has applied
        # settings.LOGGING by now: take production's formatters and levels from it.
        formatters = [
            h.formatter for h in logging.root.handlers
            if h.formatter is not None and not type(h).__module__.startswith("_pytest")
        ]
        if not any(isinstance(f, JsonFormatter) for f in formatters):
            formatters.append(JsonFormatter())
        self.handler = CapturingHandler(formatters or [logging.Formatter()])
        self._attach()
        self._record_values()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        if self.handler is not None:
            self.handler.test = item.nodeid
        try:
            return (yield)
        finally:
            if self.handler is not None:
                self._attach()
                self.handler.test = "(outside a test)"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.handler is None or self.config.option.collectonly:
            return
        for logger in self.attached:
            logger.removeHandler(self.handler)
        self.known.hash_outside_secrets()
        basetemp = self.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        files = sorted(p for p in basetemp.rglob("*.log") if p.is_file())
        self.leaks = scan([*self.handler.production, *read_log_files(basetemp)], self.known)
        self.notes = scan(self.handler.below_level, self.known)
        known = self.known
        self.summary = (
            f"leakcheck: {self.handler.records} log lines + {len(files)} log files scanned "
            f"for {len(known.secrets)} secrets, {len(known.api_keys)} API keys, {len(known.hashes)} hashes, "
            f"{len(known.tokens)} tokens, {len(known.certificates)} certificates: "
            + (f"{len(self.leaks)} LEAKS" if self.leaks else "clean")
        )
        if self.leaks and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summary:
            return
        if self.leaks:
            terminalreporter.section("leakcheck: secrets or tokens in logs", sep="=", red=True)
            self._report(terminalreporter, self.leaks)
        if self.notes:
            terminalreporter.section("leakcheck: below production's log level (not failing)", sep="-")
            self._report(terminalreporter, self.notes)
        terminalreporter.write_line(self.summary, red=bool(self.leaks), green=not self.leaks)

    @staticmethod
    def _report(terminalreporter: Any, leaks: list[Leak]) -> None:
        for leak in leaks[:MAX_REPORTED]:
            terminalreporter.write_line(f"{leak.source}: {leak.what}")
            terminalreporter.write_line(f"    {leak.excerpt}")
        if len(leaks) > MAX_REPORTED:
            terminalreporter.write_line(f"... and {len(leaks) - MAX_REPORTED} more")

    def pytest_unconfigure(self) -> None:
        self.patch.undo()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LeakCheck(config), "leakcheck")
