"""What every system's driver shares: the measurements, worker processes, stamps and results.

A driver is a module with a `PEER` object (see `Peer`) that ends with `main(PEER)`. The
comparison runs it as `python -m bench.peers.NAME COMMAND CONFIG-JSON` with the Python that
has the system installed (the peers' own virtualenv, or the project's for jobengine), and reads
one result line from its output. This module imports neither jobengine nor any peer.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[2]
RESULT_PREFIX = "BENCH-RESULT "
READY_LINE = "BENCH-READY"
STAMPS_VARIABLE = "BENCH_STAMPS"  # the file a stamp job appends its latency to
POLL = 0.02  # seconds between looks at the queue while waiting for it to empty
WARM_UP = 200  # jobs run (untimed) by the ready workers before a measurement
STOP_TIMEOUT = 30.0
PHASES: dict[str, float] = {}  # seconds spent in each part of a command, for the run's log


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    began = time.monotonic()
    try:
        yield
    finally:
        PHASES[name] = PHASES.get(name, 0.0) + time.monotonic() - began


@dataclass(frozen=True)
class Config:
    url: str
    jobs: int = 10_000  # queued no-op jobs to process
    single: int = 1_000  # jobs enqueued one per call
    bulk: int = 10_000  # jobs enqueued in batches of `batch`
    batch: int = 1_000
    latency_jobs: int = 500
    gap: float = 0.02  # mean seconds between two latency submits (uniform, 0.5x to 1.5x)
    concurrency: int = 10
    workers: int = 2
    deadline: float = 120.0  # seconds any one wait may take
    history: int = 0  # finished jobs to insert (`history` command)


class Peer(Protocol):
    """One system under test, as its driver implements it."""

    name: str
    remaining_sql: str  # SELECT count(*) FROM ...: jobs not yet finished (cheap, indexed)
    last_finish_sql: str  # one row, one column: the last finish time (epoch), or NULL

    def setup(self, config: Config) -> None:
        """Install the system's schema into a new, empty database."""

    def reset(self, config: Config) -> None:
        """Remove every job (and its history) from the database."""

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        """Enqueue `count` no-op jobs, `batch` per call; the seconds it took (None: no bulk)."""

    def fill(self, config: Config, count: int) -> float:
        """Queue `count` no-op jobs in one transaction; `time.time()` right after its commit
        (before any connection is closed)."""

    def history(self, config: Config, count: int) -> None:
        """Insert `count` finished jobs the way the system keeps them by default."""

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        """Run one worker process's loop until SIGTERM; call `ready` once it takes jobs."""

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        """Submit one stamp job (argument: `time.time()` just before the call) per gap, then
        sleep the gap."""


def record_stamp(submitted: float) -> None:
    """What a stamp job does: append its enqueue-to-start seconds to the stamps file."""
    elapsed = time.time() - submitted
    descriptor = os.open(os.environ[STAMPS_VARIABLE], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{elapsed:.6f}\n".encode())
    finally:
        os.close(descriptor)


# -- processes ---------------------------------------------------------------------------------


def spawn(module: str, command: str, config: Config, env: dict[str, str]) -> subprocess.Popen[str]:
    """This driver again, as a child in this process group, its output read by us."""
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(
        [sys.executable, "-m", module, command, json.dumps(asdict(config))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, **env},
        text=True,
    )
    process.log = log  # type: ignore[attr-defined]
    return process


def output_tail(process: subprocess.Popen[str]) -> str:
    log = process.log  # type: ignore[attr-defined]
    log.seek(0)
    return str(log.read()[-1500:])


def wait_for_line(process: subprocess.Popen[str], wanted: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], min(left, 0.5))
        if readable:
            line = process.stdout.readline()
            if line.strip() == wanted:
                return
            if not line and process.poll() is not None:
                break
    raise RuntimeError(f"no {wanted} from the child in {timeout:.0f} s: {output_tail(process)}")


def stop(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM (each system drains on it), then SIGKILL when it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def workers(
    module: str, config: Config, count: int, env: dict[str, str]
) -> Iterator[list[subprocess.Popen[str]]]:
    """`count` worker processes, each ready to take jobs; stopped at the end whatever happens."""
    started: list[subprocess.Popen[str]] = []
    try:
        with phase("workers start"):
            for _ in range(count):
                started.append(spawn(module, "worker", config, env))
            for process in started:
                wait_for_line(process, READY_LINE, config.deadline)
            time.sleep(0.3)  # their listeners connect after they report ready
        yield started
    finally:
        with phase("workers stop"):
            for process in started:  # all drain at once, then each is waited for
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in started:
                stop(process)


# -- measurements -----------------------------------------------------------------------------


class Counter:
    """The peer's own queries on its own tables, on one connection."""

    def __init__(self, peer: Peer, config: Config) -> None:
        self.peer = peer
        if config.url.startswith("sqlite"):
            path = config.url.split("///", 1)[1]
            self.connection: Any = sqlite3.connect(path, isolation_level=None, timeout=30)
        else:
            import psycopg

            self.connection = psycopg.connect(config.url, autocommit=True)

    def value(self, sql: str) -> Any:
        return self.connection.execute(sql).fetchone()[0]

    def close(self) -> None:
        self.connection.close()


def process_rate(peer: Peer, config: Config, count: int) -> dict[str, Any]:
    """Queue `count` jobs in one transaction for the ready workers; jobs/s until all finished,
    counted from the commit to the system's own record of the last finish."""
    counter = Counter(peer, config)
    try:
        with phase("warm-up"):
            peer.fill(config, WARM_UP)  # connections opened, code paths run once: then measure
            wait_until_empty(counter, peer, config.deadline)
        with phase("processing"):
            committed = peer.fill(config, count)
            left = wait_until_empty(counter, peer, config.deadline)
        seen_empty = time.time()
        last = counter.value(peer.last_finish_sql)
    finally:
        counter.close()
    finished_at = float(last) if last is not None else seen_empty
    done = count - int(left)
    seconds = max(finished_at - committed, 1e-6)
    return {"jobs": done, "seconds": seconds, "rate": done / seconds, "complete": not left}


def wait_until_empty(counter: Counter, peer: Peer, timeout: float) -> int:
    """Jobs still unfinished once none are left or `timeout` seconds have passed. The polls ask
    only whether one is left: counting them all every 20 ms would load the server, the more
    so for the systems that keep finished jobs in the same table."""
    deadline, any_left = time.monotonic() + timeout, exists_form(peer.remaining_sql)
    while counter.value(any_left) and time.monotonic() < deadline:
        time.sleep(POLL)
    return int(counter.value(peer.remaining_sql))


def exists_form(count_sql: str) -> str:
    """'SELECT count(*) FROM t WHERE c' as 'SELECT EXISTS (SELECT 1 FROM t WHERE c)'."""
    head = "SELECT count(*) FROM "
    if not count_sql.startswith(head):
        raise ValueError(f"remaining_sql must start with {head!r}: {count_sql!r}")
    return f"SELECT EXISTS (SELECT 1 FROM {count_sql[len(head) :]})"


def latencies(module: str, peer: Peer, config: Config, stamps: Path) -> dict[str, Any]:
    """Enqueue-to-start seconds of `latency_jobs` stamp jobs, submitted by another process."""
    submitter = spawn(module, "submit", config, {})
    try:
        with phase("latency"):
            submitter.wait(config.deadline + config.latency_jobs * config.gap * 1.5)
    finally:
        stop(submitter, 5)
    if submitter.returncode != 0:
        raise RuntimeError(f"the submitter failed: {output_tail(submitter)}")
    deadline = time.monotonic() + config.deadline
    values: list[float] = []
    while len(values) < config.latency_jobs and time.monotonic() < deadline:
        time.sleep(0.05)
        values = [float(line) for line in stamps.read_text().split()] if stamps.exists() else []
    return {"seconds": values, "complete": len(values) >= config.latency_jobs}


def enqueue_rates(peer: Peer, config: Config) -> dict[str, Any]:
    with phase("enqueue"):
        peer.reset(config)
        single = peer.enqueue(config, config.single, 1)
        peer.reset(config)
        bulk = peer.enqueue(config, config.bulk, config.batch)
        peer.reset(config)
    return {
        "single": config.single / single if single else None,
        "bulk": config.bulk / bulk if bulk else None,
    }


def run_all(module: str, peer: Peer, config: Config) -> dict[str, Any]:
    """Enqueue rates, then processing with `workers` processes, then latency on one idle one."""
    result = enqueue_rates(peer, config)
    with tempfile.TemporaryDirectory(prefix="bench-stamps-") as folder:
        stamps = Path(folder) / "stamps"
        env = {STAMPS_VARIABLE: str(stamps)}
        with workers(module, config, config.workers, env) as started:
            result["processing"] = process_rate(peer, config, config.jobs)
            for extra in started[1:]:
                stop(extra)
            result["latency"] = latencies(module, peer, config, stamps)
    peer.reset(config)
    return result


def process_only(module: str, peer: Peer, config: Config) -> dict[str, Any]:
    with workers(module, config, config.workers, {STAMPS_VARIABLE: os.devnull}):
        return {"processing": process_rate(peer, config, config.jobs)}


def spaced_gaps(config: Config) -> list[float]:
    return [random.uniform(0.5, 1.5) * config.gap for _ in range(config.latency_jobs)]


# -- the command line --------------------------------------------------------------------------


def ready() -> None:
    """Tell the parent this worker takes jobs; what it prints later goes to its log, so that
    the pipe nobody reads any more can never fill up and stall it."""
    print(READY_LINE, flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def main(peer: Peer, module: str) -> None:
    """`python -m MODULE COMMAND CONFIG-JSON`; prints one result line."""
    command, config = sys.argv[1], Config(**json.loads(sys.argv[2]))
    if command == "worker":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the comparison stops us with SIGTERM
        peer.work(config, ready)
        return
    result: dict[str, Any] = {}
    if command == "setup":
        peer.setup(config)
    elif command == "reset":
        peer.reset(config)
    elif command == "history":
        began = time.perf_counter()
        peer.history(config, config.history)
        result = {"seconds": time.perf_counter() - began}
    elif command == "run":
        result = run_all(module, peer, config)
    elif command == "process":
        result = process_only(module, peer, config)
    elif command == "submit":
        peer.submit_spaced(config, spaced_gaps(config))
    else:
        raise SystemExit(f"unknown command {command!r}")
    if PHASES:
        result["phases"] = PHASES
    print(RESULT_PREFIX + json.dumps(result), flush=True)
