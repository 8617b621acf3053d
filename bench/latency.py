"""Enqueue-to-start latency on an idle worker: p50/p95 over N jobs, per backend and wake-up path."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.app import make_engine
from bench.databases import POSTGRES, SQLITE, backends, fresh_database
from bench.options import Options
from bench.processes import worker_process
from bench.report import Table
from jobengine import Engine
from jobengine.worker import Settings, Worker


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of `samples`."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[94]


def submit_spaced(engine: Engine, count: int, mean_gap: float) -> list[int]:
    """Submit one job at a time at random gaps, so arrivals do not lock step with the poll."""
    ids = []
    for _ in range(count):
        ids.append(engine.submit("noop"))
        time.sleep(random.uniform(0.5 * mean_gap, 1.5 * mean_gap))
    return ids


def start_latencies(engine: Engine, ids: list[int], timeout: float = 60) -> list[float]:
    """Milliseconds from submit (created_at) to start (started_at) of each job."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [engine.get(job_id) for job_id in ids]
        if all(job.started_at is not None for job in jobs):
            return [1000 * ((job.started_at or 0) - job.created_at) for job in jobs]
        if time.monotonic() > deadline:
            raise RuntimeError("jobs did not start in time; is the worker running?")
        time.sleep(0.1)


def measure(url: str, samples: int, mean_gap: float) -> list[float]:
    engine = make_engine(url)
    try:
        return start_latencies(engine, submit_spaced(engine, samples, mean_gap))
    finally:
        engine.close()


@contextmanager
def worker_thread(url: str, poll_interval: float) -> Iterator[Engine]:
    """A worker in a thread of this process: a submit wakes it through an in-process event."""
    engine = make_engine(url)
    worker = Worker(engine, Settings(poll_interval=poll_interval))
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    thread.start()
    try:
        while not engine.store.workers.find():
            time.sleep(0.01)
        yield engine
    finally:
        worker.stop()
        thread.join(60)
        engine.close()


def in_process(samples: int) -> list[float]:
    with fresh_database(SQLITE) as url, worker_thread(url, 1.0) as engine:
        return start_latencies(engine, submit_spaced(engine, samples, 0.03))


def notify_round_trip(url: str, samples: int) -> list[float]:
    """The reference for PostgreSQL: milliseconds for a bare NOTIFY to reach a listener."""
    import psycopg

    with (
        psycopg.connect(url, autocommit=True) as listener,
        psycopg.connect(url, autocommit=True) as sender,
    ):
        listener.execute("LISTEN bench_reference")
        timings = []
        for number in range(samples):
            began = time.perf_counter()
            sender.execute("SELECT pg_notify('bench_reference', %s)", (str(number),))
            next(iter(listener.notifies(timeout=5, stop_after=1)))
            timings.append(1000 * (time.perf_counter() - began))
            time.sleep(0.002)
        return timings


def row(table: Table, label: str, samples: list[float], reference: str, ratio: str) -> None:
    p50, p95 = percentiles(samples)
    table.add(label, len(samples), p50, p95, reference, ratio)


def run(options: Options) -> Table:
    """Every wake-up path: PostgreSQL NOTIFY, SQLite polls from another process, one process."""
    table = Table(
        "Enqueue-to-start latency on an idle worker (ms)",
        ["backend, wake-up", "jobs", "p50", "p95", "reference p50", "p50 / reference"],
    )
    if POSTGRES in backends():
        with fresh_database(POSTGRES) as url, worker_process(url, 1.0):
            reference = percentiles(notify_round_trip(url, options.samples))[0]
            samples = measure(url, options.samples, 0.03)
        label = "bare NOTIFY round trip"
        row(
            table,
            "PostgreSQL, NOTIFY (other process)",
            samples,
            f"{reference:.2f} ({label})",
            f"{percentiles(samples)[0] / reference:.1f}x",
        )
    for poll in options.polls:
        with fresh_database(SQLITE) as url, worker_process(url, poll):
            samples = measure(url, options.samples, max(0.03, poll / 5))
        expected = 1000 * poll / 2
        row(
            table,
            f"SQLite, poll {poll:g} s (other process)",
            samples,
            f"{expected:.0f} (half the poll interval)",
            f"{percentiles(samples)[0] / expected:.2f}x",
        )
    samples = in_process(options.samples)
    row(table, "SQLite, in-process wake (same process)", samples, "-", "-")
    table.notes.append(
        "latency = started_at - created_at of each job; jobs submitted one at a time at random "
        "gaps (mean 30 ms, or a fifth of the poll interval) to an idle worker, concurrency 10"
    )
    return table
