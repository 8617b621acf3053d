"""Throughput of no-op jobs through a real worker process, next to the bare claim loop."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import reference
from bench.app import make_engine
from bench.databases import SQLITE, backends, fill, fresh_database
from bench.options import Options
from bench.processes import worker_process
from bench.report import Table
from jobengine import Engine

REFERENCE_SECONDS = 8.0  # time box of one bare-loop measurement


@dataclass(frozen=True)
class Rate:
    jobs: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def ended(engine: Engine) -> int:
    counts = engine.store.jobs.count_by_status()
    return sum(count for status, count in counts.items() if status.terminal)


def measured_rate(engine: Engine) -> Rate:
    """Jobs ended, over the time from the first start to the last finish (from the database)."""
    with engine.store.database.transaction(write=False) as transaction:
        [row] = transaction.execute(
            "SELECT COUNT(*) AS n, MIN(started_at) AS first, MAX(finished_at) AS last"
            " FROM jobs WHERE finished_at IS NOT NULL"
        )
    if not row["n"]:
        return Rate(0, 0.0)
    return Rate(int(row["n"]), float(row["last"] - row["first"]))


def engine_rate(url: str, options: Options, poll_interval: float) -> Rate:
    """Fill the queue, start a worker, and wait until it is empty or the time box is over."""
    engine = make_engine(url)
    try:
        fill(engine.store, options.jobs, time.time())
        with worker_process(url, poll_interval):
            deadline = time.monotonic() + options.seconds
            while ended(engine) < options.jobs and time.monotonic() < deadline:
                time.sleep(0.1)
        return measured_rate(engine)
    finally:
        engine.close()


def reference_rates(backend: str, options: Options) -> tuple[float, float]:
    """(one row per transaction, batches of 100) in jobs/s, each on a fresh database."""
    rates = []
    for batch in (1, 100):
        with fresh_database(backend) as url:
            rates.append(
                reference.rate(backend == SQLITE, url, options.jobs, batch, REFERENCE_SECONDS)
            )
    return rates[0], rates[1]


def run(options: Options) -> Table:
    table = Table(
        "Throughput of no-op jobs (jobs/s), one worker process, concurrency 10",
        [
            "backend",
            "poll",
            "jobs ended",
            "jobs/s",
            "bare loop 1/txn",
            "ratio",
            "bare loop 100/txn",
            "ratio",
        ],
    )
    for backend in backends():
        single, batched = reference_rates(backend, options)
        for poll in options.polls:
            with fresh_database(backend) as url:
                rate = engine_rate(url, options, poll)
            table.add(
                backend,
                f"{poll:g} s",
                rate.jobs,
                rate.per_second,
                single,
                f"{rate.per_second / single:.3f}",
                batched,
                f"{rate.per_second / batched:.4f}",
            )
    table.notes += [
        f"{options.jobs:,} no-op jobs queued up front; the worker runs until they are all done "
        f"or {options.seconds:g} s pass; jobs/s = jobs ended / (last finish - first start)",
        "bare loop: the same database, its own table, one connection claiming (UPDATE ... "
        "RETURNING, SKIP LOCKED on PostgreSQL) then completing in a second transaction, "
        f"1 or 100 rows at a time (for at most {REFERENCE_SECONDS:g} s), measured in the same run",
    ]
    return table
