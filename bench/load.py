"""Load generation with wrk, and what one load run measured on the server side."""

from __future__ import annotations

import json
import math
import os
import resource
import select
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import procstat
from bench.assertions import DPOP_IAT_WINDOW_SECONDS
from bench.servers import RunningServer, Target

LUA_SCRIPT = Path(__file__).resolve().parent / "token_request.lua"
MARKER = "BENCH_RESULT "
LIMIT_MARKER = "BENCH_LIMIT"
# Slow servers (DOT with hashed secrets) queue requests for seconds at high concurrency:
# count those as slow, not as failed.
WRK_TIMEOUT_SECONDS = 30
IDLE_POLL_SECONDS = 0.25
IDLE_TIMEOUT_SECONDS = 120.0
# private_key_jwt: every request of a run needs its own assertion, made before the run for
# at least this many requests a second (the server does about 3,000 at most), each wrk thread
# a slice of its own with room for serving more than its even share.
UNIQUE_RATE_CEILING = 4500
UNIQUE_THREAD_MARGIN = 1.25
# DPoP: every proof of a run is signed (its iat) before the run and must still be within the
# server's 60 s of iat when the run's last request arrives.  Signing takes about a third of a
# second per second of run (4,500 req/s with room per thread); wait_until_idle and wrk's start
# (reading the slices) take a few more, so runs (and warm-ups) of at most this long fit.
DPOP_MAX_SECONDS = 30.0
DPOP_START_ALLOWANCE_SECONDS = 5.0
# Sent by a DPoP thread that has run out, as its DPoP header: not a JWT, so refused (400).
DPOP_EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class WrkResult:
    duration_us: int
    requests: int
    bytes: int
    checked: int
    failed: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    non_2xx: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    mean_us: float
    max_us: int
    first_error: str

    @property
    def errors(self) -> int:
        """Checked responses that failed, plus requests that never got a response."""
        return self.failed + self.connect_errors + self.read_errors + self.write_errors + self.timeouts


@dataclass(frozen=True)
class Run:
    """One server at one concurrency for a fixed time (or a fixed count of requests)."""

    server: str
    concurrency: int
    threads: int
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu_ms_per_request: float | None
    wrk_cpu_ms_per_request: float | None
    machine_busy_percent: float
    other_cpu_percent: float
    worker_rss_mb: list[float]
    wrk: dict[str, object]

    @property
    def max_rss_mb(self) -> float:
        return max(self.worker_rss_mb, default=0.0)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (the Debian package)")
    return path


def _lua_string(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"not printable ASCII: {value!r}")
    return json.dumps(value)  # for printable ASCII, a JSON string is a valid Lua string


def _lua_headers(headers: dict[str, str]) -> str:
    return ", ".join(f"[{_lua_string(name)}] = {_lua_string(value)}" for name, value in headers.items())


def _lua_list(items: tuple[str, ...]) -> str:
    return "{" + ", ".join(_lua_string(item) for item in items) + "}"


def _lua_expect(target: Target) -> str:
    """The Lua spec's checks of a good answer: ``expect`` (each) and ``expect_any`` (one at least)."""
    return f"expect = {_lua_list(target.expected)}, expect_any = {_lua_list(target.expected_any)}"


def wrk_threads(concurrency: int) -> int:
    return min(concurrency, 2)


def wrk_seconds(seconds: float) -> int:
    """wrk's ``-d``: whole seconds, at least one."""
    return max(1, round(seconds))


def write_requests(target: Target, path: Path) -> Path:
    """The Lua table of token requests wrk cycles through: one per credential."""
    lines = [f"return {{path = {_lua_string(target.token_path)}, {_lua_expect(target)}, requests = {{"]
    for credential in target.credentials:
        headers = _lua_headers(target.headers(credential))
        lines.append(f"  {{headers = {{{headers}}}, body = {_lua_string(target.body)}}},")
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def unique_requests_per_thread(*, concurrency: int, seconds: float, limit: int = 0) -> int:
    """How many single-use requests each wrk thread gets for one run (plus the one wrk's
    start-up check takes from the first thread and those in flight when a thread stops)."""
    threads = wrk_threads(concurrency)
    if limit:
        return math.ceil(limit / threads) + concurrency + 16
    share = UNIQUE_THREAD_MARGIN / threads if threads > 1 else 1.0
    return math.ceil(UNIQUE_RATE_CEILING * wrk_seconds(seconds) * share) + concurrency + 16


def write_unique_requests(target: Target, path: Path, *, threads: int, per_thread: int, now: int) -> list[Path]:
    """A requests file whose every request is used once: ``path`` (Lua) names one file per wrk
    thread, ``per_thread`` lines each: with a signer, each line a body with its own fresh
    assertion; with a prover (DPoP), each line a fresh proof, the ``DPoP`` header of the one
    fixed body.  Everything is signed with ``iat`` ``now``.  A thread sends its own lines in order
    and stops when they run out (an error), so no two threads or connections ever send the same
    assertion or proof.  Returns the files written."""
    assert target.single_use
    slices = [path.with_name(f"{path.stem}-t{index}.txt") for index in range(1, threads + 1)]
    for slice_path in slices:
        with slice_path.open("w") as out:
            for _ in range(per_thread):
                if target.prover is not None:
                    out.write(target.prover.proof(now) + "\n")
                else:
                    assert target.signer is not None
                    out.write(target.signer.body(target.body, now) + "\n")
    headers = _lua_headers(target.headers(target.credentials[0]))
    if target.prover is not None:
        # Sent by a thread that has run out: an invalid proof, refused (400), so nothing is replayed.
        line = (f"  body = {_lua_string(target.body)}, line_header = \"DPoP\", "
                f"exhausted = {_lua_string(DPOP_EXHAUSTED)},\n")
    else:
        # Sent by a thread that has run out: no credentials, so it cannot replay anything (401).
        line = f"  exhausted = {_lua_string(target.body)},\n"
    path.write_text(
        f"return {{path = {_lua_string(target.token_path)}, headers = {{{headers}}}, {_lua_expect(target)},\n"
        + line
        + f"  slices = {{{', '.join(_lua_string(str(item)) for item in slices)}}}}}\n"
    )
    return [path, *slices]


class RequestFiles:
    """The requests file wrk reads for each run against one target.

    With a secret, one file written once that every run cycles through. With a signer
    (private_key_jwt) or a prover (DPoP), new files before each run, sized for it (setup,
    outside the timed run), the previous run's deleted: an assertion or a proof is accepted
    once, so none is reused across runs, threads or connections.  A DPoP proof is accepted
    only within 60 s of its ``iat`` too: a run that could not end in time fails here, before it.
    """

    def __init__(self, target: Target, path: Path) -> None:
        self.target = target
        self.path = path
        self._written: list[Path] = []
        # The last run's single-use requests: how many, and the seconds it took to sign them.
        self.signed: tuple[int, float] | None = None
        if not target.single_use:
            write_requests(target, path)

    def for_run(self, *, concurrency: int, seconds: float, limit: int = 0) -> Path:
        if not self.target.single_use:
            return self.path
        for old in self._written:
            old.unlink(missing_ok=True)
        now, began = int(time.time()), time.monotonic()
        threads = wrk_threads(concurrency)
        per_thread = unique_requests_per_thread(concurrency=concurrency, seconds=seconds, limit=limit)
        self._written = write_unique_requests(self.target, self.path, threads=threads, per_thread=per_thread, now=now)
        self.signed = (threads * per_thread, time.monotonic() - began)
        if self.target.prover is not None:
            signed = time.time() - now  # from iat (rounded down) to the end of signing
            needed = signed + wrk_seconds(seconds) + DPOP_START_ALLOWANCE_SECONDS
            if needed > DPOP_IAT_WINDOW_SECONDS:
                raise RuntimeError(
                    f"{self.target.name}: proofs signed {signed:.1f} s before a {wrk_seconds(seconds)} s run "
                    f"(+{DPOP_START_ALLOWANCE_SECONDS:.0f} s to start) would be older than the server's "
                    f"{DPOP_IAT_WINDOW_SECONDS} s iat window by its end; use --duration and --warmup of at most "
                    f"{DPOP_MAX_SECONDS:.0f} s for the dpop row"
                )
        return self.path


def run_wrk(target: Target, requests_file: Path, *, concurrency: int, seconds: float,
            limit: int = 0) -> WrkResult:
    """Run wrk against the token endpoint for ``seconds``, or until ``limit`` responses (0: no limit).

    wrk has no request-count bound: each thread stops itself at its share of ``limit`` and
    says so on stdout; once all have, wrk is interrupted (SIGINT), which ends the run early
    with its full report.
    """
    threads = wrk_threads(concurrency)
    per_thread = math.ceil(limit / threads) if limit else 0
    command = [
        require_wrk(), "-t", str(threads), "-c", str(concurrency), "-d", f"{wrk_seconds(seconds)}s",
        "--timeout", f"{WRK_TIMEOUT_SECONDS}s", "-s", str(LUA_SCRIPT),
        f"{target.url}{target.token_path}", "--", str(requests_file), str(per_thread),
    ]
    deadline = time.monotonic() + seconds + WRK_TIMEOUT_SECONDS + 60
    process = subprocess.Popen(  # noqa: S603 - wrk with our own arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        early = _read_until_limits(process, threads if limit else 0, deadline)
        if process.poll() is None and limit:
            process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout, stderr = early + rest.decode(), errors.decode()
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return WrkResult(**json.loads(line[len(MARKER):]))
    raise RuntimeError(f"wrk gave no result ({process.returncode}):\n{stdout}\n{stderr}")


def _read_until_limits(process: subprocess.Popen[bytes], expected: int, deadline: float) -> str:
    """Read wrk's stdout until ``expected`` threads have reported BENCH_LIMIT, wrk ends, or the deadline."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    received = b""
    while received.count(LIMIT_MARKER.encode()) < expected and time.monotonic() < deadline:
        ready, _, _ = select.select([descriptor], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(descriptor, 65536)  # unbuffered: select() sees everything not yet read
        if not chunk:
            break  # wrk has ended
        received += chunk
    return received.decode()


def wait_until_idle(server: RunningServer) -> None:
    """Wait until the server stops burning CPU: requests queued when wrk stopped are still served."""
    deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
    last = procstat.total_cpu_seconds(server.pids())
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(IDLE_POLL_SECONDS)
        now = procstat.total_cpu_seconds(server.pids())
        quiet = quiet + 1 if now - last < 0.02 else 0
        last = now


def measure(server: RunningServer, requests_file: Path, *, concurrency: int, seconds: float,
            limit: int = 0, label: str | None = None) -> Run:
    """Load ``server`` once; CPU is the master's and workers' utime+stime over the run."""
    wait_until_idle(server)
    pids = server.pids()
    cpu_before = procstat.total_cpu_seconds(pids)
    machine_before = procstat.machine_cpu()
    wrk_before = _children_cpu_seconds()
    result = run_wrk(server.target, requests_file, concurrency=concurrency, seconds=seconds, limit=limit)
    cpu_after = procstat.total_cpu_seconds(pids)
    machine_after = procstat.machine_cpu()
    wrk_cpu = _children_cpu_seconds() - wrk_before
    rss = [round(value / 2**20, 1) for value in server.worker_rss().values()]
    elapsed = result.duration_us / 1e6
    machine_total = machine_after[1] - machine_before[1]
    return Run(
        server=label or server.target.name,
        concurrency=concurrency,
        threads=wrk_threads(concurrency),
        requests=result.requests,
        seconds=round(elapsed, 3),
        requests_per_second=round(result.requests / elapsed, 1) if elapsed else 0.0,
        p50_ms=result.p50_us / 1000,
        p90_ms=result.p90_us / 1000,
        p99_ms=result.p99_us / 1000,
        max_ms=result.max_us / 1000,
        errors=result.errors,
        cpu_ms_per_request=_per_request(cpu_after - cpu_before, result.requests),
        wrk_cpu_ms_per_request=_per_request(wrk_cpu, result.requests),
        machine_busy_percent=_percent(machine_after[0] - machine_before[0], machine_total),
        other_cpu_percent=_percent(
            machine_after[0] - machine_before[0] - (cpu_after - cpu_before) - wrk_cpu, machine_total
        ),
        worker_rss_mb=rss,
        wrk=asdict(result),
    )


def _children_cpu_seconds() -> float:
    """CPU time of this process's finished children: here, the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _per_request(cpu_seconds: float, requests: int) -> float | None:
    return round(cpu_seconds * 1000 / requests, 3) if requests else None


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole > 0 else 0.0
