"""CPU a job costs in each step of the hot path, in this process and in the local server."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from functools import partial

from bench.app import make_engine
from bench.databases import POSTGRES, backends, fill, fresh_database
from bench.options import Options
from bench.report import Table
from jobengine.model import Job, Status
from jobengine.recorder import decide
from jobengine.runner import Outcome
from jobengine.store import Store
from jobengine.store.jobs import Claim

BATCHES = (10, 25, 50)
WORKER = "bench:cost"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu() -> float:
    """CPU seconds of every postgres process of this host (0 when there is none to read)."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                line = stat.read()
        except OSError:
            continue
        if "(postgres)" in line:
            fields = line.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(step: Callable[[], int]) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) in us per job of `step`, which returns its job count."""
    wall, client, server = time.perf_counter(), own_cpu(), server_cpu()
    jobs = step()
    per_job = 1e6 / max(jobs, 1)
    return (
        (time.perf_counter() - wall) * per_job,
        (own_cpu() - client) * per_job,
        (server_cpu() - server) * per_job,
    )


def claim_all(store: Store, count: int, batch: int, into: list[Job]) -> int:
    while len(into) < count:
        claimed = store.jobs.claim(WORKER, [], batch, time.time(), ["noop"], start=True)
        if not claimed:
            break
        into += claimed
    return len(into)


def record_all(store: Store, jobs: list[Job], batch: int) -> int:
    now, success = time.time(), Outcome(Status.SUCCESS)
    for start in range(0, len(jobs), batch):
        part = jobs[start : start + batch]
        store.jobs.move_first([decide(job, success, None, WORKER, now) for job in part], now)
    return len(jobs)


def cycle_all(store: Store, jobs: list[Job], batch: int) -> int:
    """A running worker's cycles: a batch's outcomes recorded and the next batch claimed and
    started in one transaction, until none is left; the count recorded."""
    recorded, success, claim = 0, Outcome(Status.SUCCESS), Claim(WORKER, (), batch, ("noop",))
    while jobs:
        now = time.time()
        moves = [decide(job, success, None, WORKER, now) for job in jobs]
        recorded += len(jobs)
        jobs = store.jobs.record_then_claim(moves, now, claim)[1]
    return recorded


def steps(backend: str, batch: int, count: int) -> list[tuple[str, tuple[float, float, float]]]:
    """Fill a fresh database with `count` jobs, claim them all, record them all."""
    with fresh_database(backend) as url:
        engine = make_engine(url)
        try:
            store, jobs = engine.store, list[Job]()
            fill(store, count, time.time())
            claimed = measured(partial(claim_all, store, count, batch, jobs))
            recorded = measured(partial(record_all, store, jobs, batch))
            fill(store, count, time.time())
            first = store.jobs.claim(WORKER, [], batch, time.time(), ["noop"], start=True)
            cycled = measured(partial(cycle_all, store, first, batch))
            return [
                ("claim + start", claimed),
                ("record", recorded),
                ("record + claim + start", cycled),
            ]
        finally:
            engine.close()


def run(options: Options) -> Table:
    table = Table(
        "CPU per job of each step (us): claim and start, record the outcome, and both in one"
        " transaction (a running worker's cycle), in batches",
        ["backend", "batch", "step", "wall", "client CPU", "server CPU"],
    )
    for backend in backends():
        for batch in BATCHES:
            for step, cost in steps(backend, batch, options.jobs):
                table.add(backend, batch, step, *cost)
    table.notes.append(
        "server CPU: every postgres process of this host (autovacuum too); 0 for SQLite, "
        "which runs in the client. One process, no worker: the store's own cost."
    )
    if POSTGRES not in backends():
        table.notes.append("PostgreSQL was not reachable: SQLite only")
    return table
