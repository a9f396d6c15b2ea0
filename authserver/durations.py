"""Durations as operators write them: ``300``, ``90s``, ``10m``, ``1h``, ``1d``."""

from __future__ import annotations

import re

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\s*(\d{1,9})\s*([smhd]?)\s*")


def parse_duration(value: str | int) -> int:
    """Return the duration in whole seconds; raise ``ValueError`` for anything else.

    Zero and negative durations are refused: a token or key that is already
    expired when made is always a configuration mistake.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 300, 90s, 10m, 1h, 1d)")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return seconds


_RATE = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{0,9})\s*([smhd])\s*")


def parse_rate(value: str) -> tuple[int, int] | None:
    """``N/s|m|h|d`` (also ``N/10m``): ``(N, window seconds)``; ``"off"``: ``None``.

    Raise ``ValueError`` for anything else, and for a zero count or window.
    """
    if value.strip().lower() == "off":
        return None
    match = _RATE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a rate: {value!r} (use e.g. 10/m, 100/h, 5/10m, or off)")
    count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    if count <= 0 or multiple <= 0:
        raise ValueError(f"a rate must allow at least one event in a positive window, not {value!r}")
    return count, multiple * _UNITS[unit]
