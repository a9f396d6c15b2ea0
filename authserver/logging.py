"""Log lines: plain for people, or one JSON object per line with every ``extra`` field as a
member; and the configuration Django applies (``LOGGING_CONFIG``)."""

from __future__ import annotations

import json
import logging
import logging.config
import time
from datetime import UTC, datetime
from typing import Any


def configure(config: dict[str, Any]) -> None:
    """``logging.config.dictConfig``, with records that skip what no format of ours prints.

    Every issued token writes a log line, and making its record was about half of its cost
    (docs/performance.md, issue 17).  As the logging HOWTO's "Optimization" section lists:
    no caller lookup (``_srcfile``: file, line and function are never printed), no thread
    and no multiprocessing name.  The process id stays: gunicorn's error log prints it.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(config)


class PlainFormatter(logging.Formatter):
    """``logging.Formatter`` with ``asctime`` formatted once a second, not once a line: the
    same text (local time, ``,`` and milliseconds), without a ``strftime`` per record."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        if datefmt:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)  # one assignment: a reader sees an old pair or a new one
        return self.default_msec_format % (text, record.msecs) if self.default_msec_format else text

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
