"""gunicorn's logger, building only the access-log atoms the format names.

gunicorn's ``Logger.atoms`` builds every atom of its access-log format for every request:
the time, the request line, and one atom per request header, response header and environ
variable, which ``SafeAtoms`` then copies and escapes one by one.  Our format names seven of
them.  Under load that was about 35 µs of a token's 540 (docs/performance.md, issue 17);
this logger reads the format once and builds just its atoms, each exactly as gunicorn builds
it, so every line reads as gunicorn's would.  A format naming an atom not listed here (the
Basic user ``u``, say) gets gunicorn's own ``atoms``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

Environ = dict[str, Any]
Atom = Callable[[Any, Environ, timedelta], object]

# gunicorn's atoms (``glogging.Logger.atoms``), one function each, for the names below.
_ATOMS: dict[str, Atom] = {
    "h": lambda resp, environ, took: environ.get("REMOTE_ADDR", "-"),
    "l": lambda resp, environ, took: "-",
    "r": lambda resp, environ, took: f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
    "s": lambda resp, environ, took: (
        resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status),
    "m": lambda resp, environ, took: environ.get("REQUEST_METHOD"),
    "U": lambda resp, environ, took: environ.get("PATH_INFO"),
    "q": lambda resp, environ, took: environ.get("QUERY_STRING"),
    "H": lambda resp, environ, took: environ.get("SERVER_PROTOCOL"),
    "b": lambda resp, environ, took: getattr(resp, "sent", None) is not None and str(resp.sent) or "-",
    "B": lambda resp, environ, took: getattr(resp, "sent", None),
    "f": lambda resp, environ, took: environ.get("HTTP_REFERER", "-"),
    "a": lambda resp, environ, took: environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda resp, environ, took: took.seconds,
    "D": lambda resp, environ, took: took.seconds * 1000000 + took.microseconds,
    "M": lambda resp, environ, took: took.seconds * 1000 + int(took.microseconds / 1000),
    "L": lambda resp, environ, took: f"{took.seconds}.{took.microseconds:06d}",
    "p": lambda resp, environ, took: f"<{os.getpid()}>",
}
# ``%({name}i)s``, ``%({name}o)s``, ``%({name}e)s``: a request header, response header or
# environ variable; gunicorn matches the name case-insensitively.
_FIELD = re.compile(r"\{([^}]*)\}([ioe])\Z")


@functools.lru_cache(maxsize=8)
def format_atoms(access_log_format: str) -> tuple[str, ...] | None:
    """The atoms ``access_log_format`` names, or None if one of them is not built here."""
    names = tuple(dict.fromkeys(re.findall(r"%\(([^)]*)\)", access_log_format)))
    if all(name in _ATOMS or _FIELD.match(name) for name in names):
        return names
    return None


def _field(kind: str, name: str, resp: Any, req: Any, environ: Environ) -> object:
    """A header or environ atom as gunicorn's would be: the last field of that name, or absent."""
    fields = {"i": req.headers, "o": resp.headers, "e": environ.items()}[kind]
    found = [value for key, value in fields if key.lower() == name]
    return found[-1] if found else None


class AccessLogger(glogging.Logger):
    def atoms(self, resp: Any, req: Any, environ: Environ, request_time: timedelta) -> dict[str, object]:
        names = format_atoms(self.cfg.access_log_format)
        if names is None:
            gunicorns: dict[str, object] = super().atoms(resp, req, environ, request_time)
            return gunicorns
        atoms: dict[str, object] = {}
        for name in names:
            field = _FIELD.match(name)
            if field is None:
                atoms[name] = _ATOMS[name](resp, environ, request_time)
                continue
            # Keyed lower-case, as SafeAtoms looks fields up; an absent one is logged as "-".
            key = name.lower()
            value = _field(field[2], key[1:-2], resp, req, environ)
            if value is not None:
                atoms[key] = value
        return atoms
