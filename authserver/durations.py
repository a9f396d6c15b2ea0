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
