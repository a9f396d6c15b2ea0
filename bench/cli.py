"""``python3 dev.py bench [options]``: run every server, load each, print the table and the goals."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from bench import procstat, report, servers
from bench.load import DPOP_MAX_SECONDS, RequestFiles, Run, measure, require_wrk, run_wrk
from bench.report import MemoryResult
from bench.servers import ROOT, RunningServer, Target

SERVERS = ("authserver", "private_key_jwt", "federated", "dpop", "mtls", "trivial", "node-oidc-provider",
           "dot-plain", "dot-hashed", "introspect-token", "introspect-key", "authserver-postgres",
           "authserver-registry")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
MEMORY_CONCURRENCY = 8


@dataclass(frozen=True)
class Plan:
    """One server to run: how to prepare it, whether to load it, whether the memory check uses it."""

    name: str
    prepare: Callable[[Path], AbstractContextManager[Target]]
    load: bool
    memory: bool


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py bench",
        description="Token endpoint benchmark: authserver (client_secret_basic, and beside it private_key_jwt, "
                    "federated, DPoP and mTLS clients) against a trivial Django view, "
                    "node-oidc-provider 9 and stock django-oauth-toolkit, and authserver's introspection of an "
                    "access token and of an API key, each with 2 workers (gunicorn's sync workers; node's "
                    "cluster), loaded with wrk.",
    )
    parser.add_argument("--duration", type=float, default=10.0,
                        help=f"seconds per run (default 10; at most {DPOP_MAX_SECONDS:.0f} with the dpop row, whose "
                             "proofs are signed before each run and accepted for 60 s)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help=f"seconds of warm-up per server (default 2; at most {DPOP_MAX_SECONDS:.0f} with dpop)")
    parser.add_argument("--concurrency", type=_int_list, default=[1, 8, 32],
                        help="comma-separated open connections (default 1,8,32)")
    parser.add_argument("--only", type=_name_list, default=None,
                        help=f"comma-separated servers to run, of: {', '.join(SERVERS)}")
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, metavar="URL",
                        help=f"also run authserver on a fresh PostgreSQL database (default server {DEFAULT_POSTGRES})")
    parser.add_argument("--registry", type=int, default=0, metavar="N",
                        help="also run authserver with N more clients, requests spread over a sample of them")
    parser.add_argument("--registry-sample", type=int, default=1000, metavar="K",
                        help="how many of the N clients the requests rotate over (default 1000)")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="send N token requests to a fresh authserver; report worker RSS growth after the first "
                             "--memory-baseline of them")
    parser.add_argument("--memory-baseline", type=int, default=50_000, metavar="N", help="default 50000")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="run every server N times, in turn (round 1 of each, then round 2, ...), and judge the "
                             "goals on each figure's median over the rounds (default 1): on a noisy machine")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="raw results (default .local/bench-YYYYmmdd-HHMMSS.json)")
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    if options.memory and options.memory <= options.memory_baseline:
        parser.error("--memory must be larger than --memory-baseline")
    only = options.only or []
    if "authserver-postgres" in only and not options.postgres:
        parser.error("--only authserver-postgres needs --postgres")
    if "authserver-registry" in only and not options.registry:
        parser.error("--only authserver-registry needs --registry N")
    if "dpop" in (only or SERVERS) and max(options.duration, options.warmup) > DPOP_MAX_SECONDS:
        parser.error(f"the dpop row takes --duration and --warmup of at most {DPOP_MAX_SECONDS:.0f} s: its proofs "
                     "are signed before each run and the server accepts each for 60 s after its iat; "
                     "leave dpop out with --only for longer runs")
    return options


def _int_list(text: str) -> list[int]:
    values = [int(item) for item in text.split(",") if item.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,8,32")
    return values


def _name_list(text: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown server {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    return names


def _fixed(target: Callable[[], Target]) -> Callable[[Path], AbstractContextManager[Target]]:
    return lambda workdir: nullcontext(target())


def plans(options: argparse.Namespace) -> list[Plan]:
    """The servers of this run, in order; the memory check reuses the registry (or the plain) authserver."""
    wanted = set(options.only or SERVERS)
    memory_on = "authserver-registry" if options.registry else "authserver"

    @contextmanager
    def on_postgres(workdir: Path) -> Iterator[Target]:
        with servers.postgres_database(options.postgres) as url:
            yield servers.authserver_target(name="authserver-postgres", database_url=url)

    def registry(workdir: Path) -> Target:
        return servers.authserver_target(
            name="authserver-registry", database_url=f"sqlite:///{workdir / 'registry.sqlite3'}",
            registry_file=workdir / "registry.json", registry_size=options.registry,
            registry_sample=options.registry_sample,
        )

    Prepare = Callable[[Path], AbstractContextManager[Target]]
    candidates: list[tuple[str, Prepare]] = [
        ("authserver", lambda w: nullcontext(
            servers.authserver_target(name="authserver", database_url=f"sqlite:///{w / 'authserver.sqlite3'}"))),
        ("private_key_jwt", lambda w: nullcontext(servers.private_key_jwt_target(
            name="private_key_jwt", database_url=f"sqlite:///{w / 'private_key_jwt.sqlite3'}",
            jwks_file=w / "private_key_jwt-jwks.json"))),
        ("federated", lambda w: nullcontext(servers.federated_target(
            name="federated", database_url=f"sqlite:///{w / 'federated.sqlite3'}",
            jwks_file=w / "federated-cluster-jwks.json"))),
        ("dpop", lambda w: nullcontext(
            servers.dpop_target(name="dpop", database_url=f"sqlite:///{w / 'dpop.sqlite3'}"))),
        ("mtls", lambda w: nullcontext(servers.mtls_target(
            name="mtls", database_url=f"sqlite:///{w / 'mtls.sqlite3'}", ca_file=w / "mtls-ca.pem"))),
        ("trivial", _fixed(servers.trivial_target)),
        ("node-oidc-provider", lambda w: nullcontext(servers.node_oidc_provider_target(name="node-oidc-provider"))),
        ("dot-plain", lambda w: nullcontext(
            servers.dot_target(name="dot-plain", database=w / "dot-plain.sqlite3", hashed=False))),
        ("dot-hashed", lambda w: nullcontext(
            servers.dot_target(name="dot-hashed", database=w / "dot-hashed.sqlite3", hashed=True))),
        ("introspect-token", lambda w: nullcontext(servers.introspection_target(
            name="introspect-token", database_url=f"sqlite:///{w / 'introspect-token.sqlite3'}", kind="token"))),
        ("introspect-key", lambda w: nullcontext(servers.introspection_target(
            name="introspect-key", database_url=f"sqlite:///{w / 'introspect-key.sqlite3'}", kind="key"))),
    ]
    if options.postgres:
        candidates.append(("authserver-postgres", on_postgres))
    if options.registry:
        candidates.append(("authserver-registry", lambda w: nullcontext(registry(w))))
    return [
        Plan(name, prepare, load=name in wanted, memory=bool(options.memory) and name == memory_on)
        for name, prepare in candidates
        if name in wanted or (options.memory and name == memory_on)
    ]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_server(server: RunningServer, requests: RequestFiles, options: argparse.Namespace) -> list[Run]:
    servers.check_token_request(server.target)
    if options.warmup > 0:
        concurrency = max(2, min(8, max(options.concurrency)))
        run_wrk(server.target, requests.for_run(concurrency=concurrency, seconds=options.warmup),
                concurrency=concurrency, seconds=options.warmup)
    runs = []
    for concurrency in options.concurrency:
        requests_file = requests.for_run(concurrency=concurrency, seconds=options.duration)
        workers = server.pids()
        run = measure(server, requests_file, concurrency=concurrency, seconds=options.duration)
        if server.pids() != workers:
            say(f"  warning: {server.target.name} restarted a worker during the run; CPU figures are low")
        signed = f"  ({requests.signed[0]:,} single-use requests signed in {requests.signed[1]:.1f} s before)" \
            if requests.signed else ""
        say(f"  c={concurrency:<3} {run.requests_per_second:>9.1f} req/s  p99 {run.p99_ms:.2f} ms  "
            f"{run.errors} errors  {run.cpu_ms_per_request} CPU ms/req{signed}")
        if run.errors:
            say(f"  errors: {_error_summary(run)}")
        runs.append(run)
    return runs


def memory_check(server: RunningServer, requests: RequestFiles, options: argparse.Namespace) -> MemoryResult:
    """Worker memory after ``--memory-baseline`` requests and after ``--memory`` in all."""
    servers.check_token_request(server.target)
    phases = []
    for count in (options.memory_baseline, options.memory - options.memory_baseline):
        # Bounded in time too: at 100 req/s or more the count is reached first.
        seconds = max(60.0, count / 100)
        requests_file = requests.for_run(concurrency=MEMORY_CONCURRENCY, seconds=seconds, limit=count)
        phase = measure(server, requests_file, concurrency=MEMORY_CONCURRENCY,
                        seconds=seconds, limit=count, label=f"{server.target.name} (memory)")
        workers = procstat.children(server.process.pid)
        rss = {str(pid): round(procstat.rss_bytes(pid) / 2**20, 1) for pid in workers}
        private = {str(pid): round(procstat.private_bytes(pid) / 2**20, 1) for pid in workers}
        say(f"  {phase.requests} requests, {phase.requests_per_second:.0f} req/s, {phase.errors} errors, "
            f"worker RSS {list(rss.values())} MB, private {list(private.values())} MB")
        if phase.errors:
            say(f"  errors: {_error_summary(phase)}")
        phases.append((phase, rss, private))
    (first, first_rss, first_private), (second, second_rss, second_private) = phases
    return MemoryResult(
        server=server.target.name,
        baseline_requests=1 + first.requests,
        total_requests=1 + first.requests + second.requests,
        errors=first.errors + second.errors,
        baseline_rss_mb=first_rss,
        final_rss_mb=second_rss,
        baseline_private_mb=first_private,
        final_private_mb=second_private,
        phases=[asdict(first), asdict(second)],
    )


def _error_summary(run: Run) -> str:
    counts = ", ".join(f"{name} {run.wrk[name]}" for name in
                       ("failed", "connect_errors", "read_errors", "write_errors", "timeouts") if run.wrk[name])
    return f"{counts}; first failed response: {run.wrk['first_error'] or '-'}"


def host_info() -> dict[str, object]:
    def output(*command: str) -> str:
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=10)  # noqa: S603
        except OSError:
            return ""
        return (done.stdout + done.stderr).strip()

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "")
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
        "node": output("node", "--version"),
        "wrk": output(require_wrk(), "-v").splitlines()[0] if output(require_wrk(), "-v") else "",
        "commit": output("git", "rev-parse", "HEAD"),
        "uncommitted_changes": bool(output("git", "status", "--porcelain")),
    }


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    require_wrk()
    started = datetime.now()
    memory: MemoryResult | None = None
    skipped: dict[str, str] = {}
    rounds: list[list[Run]] = [[] for _ in range(options.rounds)]
    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as tmp:
        workdir = Path(tmp)
        for number, round_runs in enumerate(rounds, start=1):
            # Each round prepares every server afresh, as one run does: credentials made when a
            # server is prepared (a workload token, an access token to introspect) then never
            # outlive their hour, however many rounds there are.
            if options.rounds > 1:
                say(f"round {number} of {options.rounds}")
            here = workdir / f"round-{number}" if options.rounds > 1 else workdir
            here.mkdir(exist_ok=True)
            for plan in plans(options):
                memory_now = plan.memory and number == 1
                if not plan.load and not memory_now:
                    continue
                say(f"{plan.name}: preparing ...")
                began = time.monotonic()
                with ExitStack() as prepared:
                    try:
                        target = prepared.enter_context(plan.prepare(here))
                    except servers.Unavailable as missing:
                        say(f"{plan.name}: skipped: {missing}")
                        skipped[plan.name] = str(missing)
                        continue
                    requests = RequestFiles(target, here / f"{plan.name}-requests.lua")
                    say(f"{plan.name}: ready in {time.monotonic() - began:.1f} s, {len(target.credentials)} "
                        f"client(s), {target.url}")
                    if plan.load:
                        with servers.serve(target, here / f"{plan.name}.log") as server:
                            round_runs.extend(load_server(server, requests, options))
                    if memory_now:
                        say(f"{plan.name}: memory check on fresh workers, {options.memory:,} requests ...")
                        with servers.serve(target, here / f"{plan.name}-memory.log") as server:
                            memory = memory_check(server, requests, options)

    runs = [run for round_runs in rounds for run in round_runs]
    judged = report.medians(runs)
    found = report.checks(judged, memory)
    print()
    if options.rounds > 1:
        for number, round_runs in enumerate(rounds, start=1):
            print(f"Round {number}:")
            print(report.table(round_runs))
            print()
        print(f"Median of {options.rounds} rounds (errors summed):")
    print(report.table(judged))
    for name, reason in skipped.items():
        print(f"{name}: skipped, {reason.splitlines()[0]}")
    warning = report.noise_warning(runs)
    if warning:
        print(warning)
    print()
    print(f"Goals (c={report.REFERENCE_CONCURRENCY} unless said otherwise):")
    print(report.checks_text(found))
    path = options.json or ROOT / ".local" / f"bench-{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "argv": argv,
        "options": {key: str(value) if isinstance(value, Path) else value for key, value in vars(options).items()},
        "host": host_info(),
        "runs": [asdict(run) | {"round": number}
                 for number, round_runs in enumerate(rounds, start=1) for run in round_runs],
        "medians": [asdict(run) for run in judged] if options.rounds > 1 else None,
        "skipped": skipped,
        "memory": asdict(memory) if memory else None,
        "checks": [asdict(check) | {"verdict": check.verdict} for check in found],
    }, indent=2) + "\n")
    print(f"\nRaw results: {path}")
    return 0
