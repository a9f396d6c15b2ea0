"""``python -m bench.profile``: where a token's CPU goes in a live gunicorn worker.

Starts the benchmark's ``authserver`` (and ``trivial``) server, loads it with wrk at c=8 as the
benchmark does, and samples every worker meanwhile with py-spy (a sampling profiler reading the
worker's stack from outside; idle time, a worker waiting in ``select``, is not sampled).  Each
sample is charged to the innermost frame that belongs to a part named in ``PARTS``, so a
``json.dumps`` called by our view counts as JSON and a ``hmac`` called from the secret check as
client authentication.  Prints each part's share of the samples and its CPU per request (the
worker's measured CPU per request times the share).

    .venv/bin/python -m bench.profile [--seconds 10] [--only authserver,trivial] [--keep DIR]
    .venv/bin/python -m bench.profile --only authserver-postgres --postgres [URL]

``authserver-postgres`` runs on a fresh database on the PostgreSQL server of ``--postgres``, as
the benchmark's row of that name does; PostgreSQL's own CPU is not sampled (it is not a worker).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import servers
from bench.cli import DEFAULT_POSTGRES
from bench.load import RequestFiles, measure, run_wrk
from bench.servers import ROOT, Target

CONCURRENCY = 8
# (part, what a frame's file path or function contains), innermost match wins; checked in order.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signing (joserfc, cryptography)", ("joserfc/", "cryptography/")),
    ("JSON", ("json/",)),
    ("log lines", ("logging/", "authserver/logging.py")),
    ("metrics", ("prometheus_client/", "tokens/metrics.py")),
    # authserver/dbread.py is left out: its reads are charged to their callers (the lockout
    # check's markers, the registry's version).
    ("lockout check (shared state)", ("tokens/ratelimit.py", "tokens/shared_state.py")),
    ("client lookup (registry version read, snapshot)", ("clients/registry.py", "clients/versions.py",
                                                         "clients/changefeed.py")),
    ("client authentication (secret check)", ("tokens/client_auth.py", "clients/secrets.py", "tokens/mtls.py",
                                              "hmac.py")),
    ("form parsing", ("tokens/form.py", "urllib/parse.py")),
    ("claims, grant, issuing", ("tokens/claims.py", "tokens/grant.py", "tokens/issuing.py", "tokens/keys.py",
                                "tokens/dpop.py", "clients/usage.py")),
    ("OAuth view and errors", ("tokens/endpoints/", "tokens/errors.py", "authserver/responses.py")),
    # Our gunicorn worker and access logger are gunicorn's part, written by us.
    ("gunicorn (HTTP parsing, sockets, worker loop)", ("gunicorn/", "socket.py", "selectors.py",
                                                       "authserver/workers.py", "authserver/accesslog.py")),
    ("authserver middleware and handlers", ("authserver/", "clients/", "tokens/")),
    ("DRF", ("rest_framework/",)),
    ("Django", ("django/",)),
    ("WSGI app (the trivial view)", ("bench/trivial",)),
)
OTHER = "other (interpreter, stdlib)"
# Frames charged to their callers instead: the hot path's small database reads.
PASSED_THROUGH = ("authserver/dbread.py",)


def part_of(stack: str) -> str:
    """The part a py-spy ``--format raw`` stack (frames root first, ``;``-separated) is charged to."""
    for frame in reversed(stack.split(";")):
        if any(needle in frame for needle in PASSED_THROUGH):
            continue
        for part, needles in PARTS:
            if any(needle in frame for needle in needles):
                return part
    return OTHER


def shares(raw: Sequence[Path]) -> dict[str, int]:
    """Samples per part over py-spy raw files (each line: ``stack count``)."""
    counts: collections.Counter[str] = collections.Counter()
    for path in raw:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                counts[part_of(stack)] += int(count)
    return dict(counts)


NAMES = ("authserver", "trivial", "authserver-postgres")


def _target(name: str, workdir: Path, postgres: str | None, stack: contextlib.ExitStack) -> Target:
    if name == "authserver":
        return servers.authserver_target(name=name, database_url=f"sqlite:///{workdir / 'authserver.sqlite3'}")
    if name == "authserver-postgres":
        if postgres is None:
            raise ValueError("authserver-postgres needs a PostgreSQL server URL")
        url = stack.enter_context(servers.postgres_database(postgres))
        return servers.authserver_target(name=name, database_url=url)
    return servers.trivial_target()


def profile(name: str, workdir: Path, seconds: float,
            postgres: str | None = None) -> tuple[dict[str, int], float, float]:
    """Samples per part of ``name``'s workers under load, its req/s and its CPU ms per request."""
    with contextlib.ExitStack() as stack:
        return _profile(_target(name, workdir, postgres, stack), workdir, seconds)


def _profile(target: Target, workdir: Path, seconds: float) -> tuple[dict[str, int], float, float]:
    name = target.name
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    with servers.serve(target, workdir / f"{name}.log") as server:
        servers.check_token_request(target)
        requests = RequestFiles(target, workdir / f"{name}-requests.txt")
        run_wrk(target, requests.for_run(concurrency=CONCURRENCY, seconds=2), concurrency=CONCURRENCY, seconds=2)
        outputs = [workdir / f"{name}-{pid}.txt" for pid in server.pids()]
        samplers = [
            subprocess.Popen(  # noqa: S603 - py-spy on our own workers
                [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                 "--format", "raw", "--nonblocking", "--output", str(output)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for pid, output in zip(server.pids(), outputs, strict=True)
        ]
        run = measure(server, requests.for_run(concurrency=CONCURRENCY, seconds=seconds),
                      concurrency=CONCURRENCY, seconds=seconds)
        for sampler in samplers:
            sampler.wait(timeout=seconds + 30)
    return shares([output for output in outputs if output.exists()]), run.requests_per_second, \
        run.cpu_ms_per_request or 0.0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="authserver,trivial")
    parser.add_argument("--keep", type=Path, default=None, help="keep the raw py-spy stacks in this folder")
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, metavar="URL",
                        help=f"the PostgreSQL server of authserver-postgres (default {DEFAULT_POSTGRES})")
    options = parser.parse_args(argv)
    unknown = [name for name in options.only.split(",") if name not in NAMES]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    if "authserver-postgres" in options.only.split(",") and not options.postgres:
        parser.error("--only authserver-postgres needs --postgres")
    workdir = options.keep or Path(tempfile.mkdtemp(prefix="authserver-profile-", dir=ROOT / ".local"))
    workdir.mkdir(parents=True, exist_ok=True)
    for name in options.only.split(","):
        counts, rate, cpu_ms = profile(name, workdir, options.seconds, options.postgres)
        total = sum(counts.values()) or 1
        print(f"\n{name}: {rate:,.0f} req/s at c={CONCURRENCY}, {cpu_ms:.2f} CPU ms/request, {total:,} samples")
        print(f"{'part':<48} {'share':>7} {'CPU µs/request':>15}")
        for part, count in sorted(counts.items(), key=lambda item: -item[1]):
            print(f"{part:<48} {count / total:>6.1%} {count / total * cpu_ms * 1000:>15.0f}")
    if options.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
