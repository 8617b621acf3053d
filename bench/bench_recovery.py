"""Recovery time: how long after a SIGKILL the running jobs of a worker move on (default settings).

Three paths, each with the default thresholds (heartbeat every 5 s, dead after 20 s):
- heartbeat: a bare worker dies; a peer's reaper notices its silence (the 20-30 s claim);
- supervisor: a worker of `jobengine run` dies; the supervisor saw it end and recovers at once;
- restart: the whole `jobengine run` tree is killed; the time from the new start to recovery.

Run alone: python -m bench.bench_recovery [--rounds N] [--jobs N] [--backend sqlite|postgresql]
It is also its own --app for the worker processes (`jobengine --app bench.bench_recovery`).
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import psutil

from bench.databases import POSTGRES, SQLITE, backends, fresh_database
from bench.options import Options
from bench.processes import ROOT
from bench.report import Table
from jobengine import Engine, Status
from jobengine.context import JobContext

TARGET = 30.0  # seconds: every running job of a dead worker has moved on (p99)
RECOVERY_VERBS = ("retry", "reap", "release")


def make_engine(url: str | None = None) -> Engine:
    engine = Engine(url)

    def hold(ctx: JobContext, seconds: float) -> None:
        ctx.sleep(seconds)

    engine.job(max_attempts=3)(hold)
    return engine


engine = make_engine()


@contextmanager
def jobengine(url: str, *arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m jobengine --app bench.bench_recovery ...`; killed with its children at the end."""
    command = [sys.executable, "-m", "jobengine", "--app", "bench.bench_recovery"]
    command += ["--database-url", url, *arguments, "--log-file", ""]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)
        try:
            yield process
        finally:
            kill_tree(process.pid)
            process.wait(30)


def kill_tree(pid: int) -> None:
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(family, timeout=10)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return value


def running_on(store_engine: Engine, ids: list[int]) -> set[str] | None:
    """The workers running `ids`, once every one of them is RUNNING."""
    jobs = [store_engine.get(job_id) for job_id in ids]
    if all(job.status is Status.RUNNING for job in jobs):
        return {job.worker or "" for job in jobs}
    return None


def recovered_at(store_engine: Engine, ids: list[int]) -> list[float] | None:
    """When each job moved on (its first retry, reap or release), once all of them have."""
    times = []
    for job_id in ids:
        moves = [e.at for e in store_engine.events(job_id) if e.verb in RECOVERY_VERBS]
        if not moves:
            return None
        times.append(moves[0])
    return times


def submit(store_engine: Engine, jobs: int) -> list[int]:
    return [store_engine.submit("hold", seconds=3600, queue="victim") for _ in range(jobs)]


def cancel_all(store_engine: Engine, ids: list[int]) -> None:
    """End the round's jobs so that the next round starts empty."""
    for job_id in ids:
        if not store_engine.get(job_id).status.terminal:
            store_engine.cancel(job_id)


def pid_of(worker: str) -> int:
    return int(worker.split(":")[1])


def heartbeat_path(url: str, rounds: int, jobs: int) -> list[float]:
    """A bare worker holding `jobs` RUNNING jobs is killed at a random moment of its heartbeat
    cycle; a peer (serving another queue) must notice. Seconds from the kill to each move."""
    store_engine, latencies = make_engine(url), []
    with jobengine(url, "worker", "--queues", "peer") as peer:
        wait_for(lambda: _registered(store_engine, peer.pid), 60, "the peer")
        for _ in range(rounds):
            with jobengine(url, "worker", "--queues", "victim") as victim:
                ids = submit(store_engine, jobs)
                wait_for(partial(running_on, store_engine, ids), 60, "the victim to run its jobs")
                time.sleep(random.uniform(0, 5))  # a random phase of the 5 s heartbeat cycle
                victim.send_signal(signal.SIGKILL)
                killed = time.time()
                times = wait_for(partial(recovered_at, store_engine, ids), 90, "recovery")
            latencies += [at - killed for at in times]
            cancel_all(store_engine, ids)
    store_engine.close()
    return latencies


def supervisor_path(url: str, rounds: int, jobs: int) -> list[float]:
    """A worker of `jobengine run` holding `jobs` RUNNING jobs is killed; the supervisor saw
    the exit and recovers without waiting for the silence."""
    store_engine, latencies = make_engine(url), []
    with jobengine(url, "run", "--workers", "2", "--queues", "victim"):
        for _ in range(rounds):
            ids = submit(store_engine, jobs)
            holders = wait_for(partial(running_on, store_engine, ids), 60, "jobs to run")
            for worker in holders:
                psutil.Process(pid_of(worker)).send_signal(signal.SIGKILL)
            killed = time.time()
            times = wait_for(partial(recovered_at, store_engine, ids), 90, "recovery")
            latencies += [at - killed for at in times]
            cancel_all(store_engine, ids)
    store_engine.close()
    return latencies


def restart_path(url: str, rounds: int, jobs: int) -> list[float]:
    """The whole `jobengine run` tree is killed with SIGKILL and started again: seconds from
    the new start to each stranded job's move."""
    store_engine, latencies = make_engine(url), []
    for _ in range(rounds):
        ids = submit(store_engine, jobs)
        with jobengine(url, "run", "--workers", "2", "--queues", "victim") as first:
            wait_for(partial(running_on, store_engine, ids), 60, "jobs to run")
            kill_tree(first.pid)
        started = time.time()
        with jobengine(url, "run", "--workers", "2", "--queues", "victim"):
            times = wait_for(partial(recovered_at, store_engine, ids), 90, "recovery")
            latencies += [at - started for at in times]
        cancel_all(store_engine, ids)
    store_engine.close()
    return latencies


def _registered(store_engine: Engine, pid: int) -> bool:
    return any(record.pid == pid for record in store_engine.store.workers.find())


PATHS: dict[str, Callable[[str, int, int], list[float]]] = {
    "heartbeat (peer reaper)": heartbeat_path,
    "supervisor (saw the exit)": supervisor_path,
    "restart (start-up recovery)": restart_path,
}


def run(options: Options, rounds: int = 4, jobs: int = 10, only: str | None = None) -> Table:
    """The suite's entry point: every path on every backend (or `only` one backend)."""
    del options  # sizes of the other benchmarks; recovery has its own
    table = Table(
        "Recovery after SIGKILL (heartbeat 5 s, dead after 20 s)",
        ["backend", "path", "rounds", "jobs", "p50 s", "p99 s", "max s", f"p99 < {TARGET:g} s"],
    )
    chosen = [b for b in backends() if only is None or b.lower() == only.lower()]
    for backend in chosen:
        for name, path in PATHS.items():
            with fresh_database(backend) as url:
                latencies = path(url, rounds, jobs)
            p50 = statistics.median(latencies)
            p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
            verdict = "yes" if p99 < TARGET else "NO"
            table.add(backend, name, rounds, len(latencies), p50, p99, max(latencies), verdict)
    table.notes.append(
        "heartbeat: a bare worker killed at a random moment of its 5 s heartbeat cycle; a peer "
        "declares it dead once it has been silent 20 s (at its next reap, every 1 s)."
    )
    table.notes.append("supervisor and restart: `jobengine run` with the same default thresholds.")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_recovery", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="kills per path and backend")
    parser.add_argument("--jobs", type=int, default=10, help="running jobs held by the victim")
    parser.add_argument("--backend", choices=[SQLITE.lower(), POSTGRES.lower()], default=None)
    arguments = parser.parse_args(argv)
    table = run(Options(), arguments.rounds, arguments.jobs, arguments.backend)
    print()
    print(table.text())


if __name__ == "__main__":
    main()
