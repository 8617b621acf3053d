"""The claim under a big history: a table of finished jobs must not slow claiming down."""

from __future__ import annotations

import statistics
import time

from bench.app import make_engine
from bench.databases import backends, fill, fresh_database
from bench.options import Options
from bench.report import Table
from jobengine import Engine

HISTORY_COLUMNS = (
    "type, queue, priority, status, args, run_at, created_at, started_at, finished_at,"
    " attempt, max_attempts"
)
HISTORY_VALUES = "'noop', 'default', 0, 'SUCCESS', '{}', n, n, n, n, 1, 1"
PENDING = 500


def add_history(engine: Engine, count: int) -> float:
    """Insert `count` finished jobs with one statement; return the seconds it took."""
    database = engine.store.database
    if database.dialect == "sqlite":
        sql = (
            "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers"
            f" WHERE n < ?) INSERT INTO jobs ({HISTORY_COLUMNS}) SELECT {HISTORY_VALUES}"
            " FROM numbers"
        )
    else:
        sql = (
            f"INSERT INTO jobs ({HISTORY_COLUMNS}) SELECT {HISTORY_VALUES}"
            " FROM generate_series(1, ?) AS numbers(n)"
        )
    began = time.perf_counter()
    with database.transaction() as transaction:
        transaction.execute(sql, (count,))
        if database.dialect == "postgresql":
            transaction.execute("ANALYZE jobs")
    return time.perf_counter() - began


def claim_times(engine: Engine) -> list[float]:
    """Milliseconds per claim of one job, over PENDING jobs claimed one at a time."""
    fill(engine.store, PENDING, time.time() - 1)
    timings = []
    for _ in range(PENDING):
        began = time.perf_counter()
        [_job] = engine.store.jobs.claim("bench", [], 1, time.time())
        timings.append(1000 * (time.perf_counter() - began))
    return timings


def measure(backend: str, history: int) -> tuple[float, float]:
    """(median ms per claim, seconds to insert the history) on a fresh database."""
    with fresh_database(backend) as url:
        engine = make_engine(url)
        try:
            took = add_history(engine, history) if history else 0.0
            return statistics.median(claim_times(engine)), took
        finally:
            engine.close()


def run(options: Options) -> Table:
    table = Table(
        "Claim cost with a big history of finished jobs (ms per claim of one job, median)",
        ["backend", "finished jobs", "ms per claim", "empty table (reference)", "ratio"],
    )
    for backend in backends():
        empty, _ = measure(backend, 0)
        full, took = measure(backend, options.finished)
        table.add(backend, options.finished, full, empty, f"{full / empty:.2f}")
        table.notes.append(
            f"{backend}: {options.finished:,} finished jobs inserted in {took:.1f} s"
        )
    table.notes.insert(
        0,
        f"{PENDING} due jobs claimed one per transaction with the engine's own claim statement; "
        "the reference is the same on an empty table, in the same run",
    )
    return table
