"""Log lines read as before the records got cheaper (issue 17): the plain format's time, the JSON
format's members, and what Django's configuration (``authserver.logging.configure``) applies."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from authserver.logging import JsonFormatter, PlainFormatter, configure

PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"


def record_at(created: float, message: str = "token issued client_id=%r") -> logging.LogRecord:
    record = logging.LogRecord("authserver.tokens", logging.INFO, __file__, 1, message, ("bench",), None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    return record


# Across second boundaries, back in time, at 0 and 999 ms, and the same second again.
MOMENTS = [1764547200.0, 1764547200.999, 1764547201.0005, 1764547199.5, 1764547201.25, 1764547261.75,
           1764547261.001, time.time()]


@pytest.mark.parametrize("datefmt", [None, "%H:%M:%S"])
def test_the_plain_formatter_writes_what_loggings_own_writes(datefmt: str | None) -> None:
    ours, loggings = PlainFormatter(PLAIN, datefmt), logging.Formatter(PLAIN, datefmt)

    for created in MOMENTS:
        assert ours.format(record_at(created)) == loggings.format(record_at(created))


def test_the_plain_formatter_line() -> None:
    created = time.mktime((2026, 12, 1, 16, 5, 7, 0, 0, -1)) + 0.042

    line = PlainFormatter(PLAIN).format(record_at(created))

    assert line == "2026-12-01 16:05:07,042 INFO authserver.tokens token issued client_id='bench'"


@pytest.fixture
def configured() -> Iterator[None]:
    """Logging as ``configure`` leaves it; loggings's module switches restored afterwards."""
    saved = logging._srcfile, logging.logThreads, logging.logMultiprocessing, logging.logProcesses  # type: ignore[attr-defined]
    root_handlers = logging.getLogger().handlers[:]
    yield
    logging._srcfile, logging.logThreads, logging.logMultiprocessing, logging.logProcesses = saved  # type: ignore[attr-defined]
    logging.getLogger().handlers[:] = root_handlers


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_records_skip_the_caller_and_thread_but_keep_the_process(
    configured: None, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.conf import settings

    config = json.loads(json.dumps(settings.LOGGING))
    config["handlers"]["console"]["formatter"] = log_format
    configure(config)
    kept = Kept()
    audit = logging.getLogger("authserver.audit")
    audit.addHandler(kept)
    try:
        audit.info("client.created %s", "x", extra={"action": "client.created"})
    finally:
        audit.removeHandler(kept)

    [record] = kept.records
    assert (record.filename, record.lineno, record.funcName) == ("(unknown file)", 0, "(unknown function)")
    assert (record.thread, record.threadName, record.processName) == (None, None, None)
    assert record.process is not None  # gunicorn's error log prints %(process)d
    line = capsys.readouterr().err.strip().splitlines()[-1]
    if log_format == "json":
        parsed = json.loads(line)
        assert parsed["message"] == "client.created x" and parsed["action"] == "client.created"
        assert set(parsed) == {"time", "level", "logger", "message", "action"}
    else:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO authserver.audit client.created x", line)


def test_the_json_formatter_adds_no_member_for_the_skipped_fields(configured: None) -> None:
    from django.conf import settings

    configure(json.loads(json.dumps(settings.LOGGING)))
    record = logging.getLogger("authserver").makeRecord("authserver.tokens", logging.INFO, "f", 1, "token issued", (),
                                                        None, extra={"client_id": "bench"})

    assert set(json.loads(JsonFormatter().format(record))) == {"time", "level", "logger", "message", "client_id"}
