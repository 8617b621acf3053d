"""jobengine exactly as in production: `jobengine worker` processes with their default settings
(poll every 1 s, heartbeats, reaping, schedule ticks, the worker's own log file at INFO, one
event row per move), submits through `Engine.submit`, on SQLite or PostgreSQL.

Finished jobs stay in `jobs` with their four event rows (submit, claim, start, finish).
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.app import make_engine
from bench.databases import fill
from bench.peers.common import Config, main
from bench.processes import worker_process
from jobengine import Engine
from jobengine.store import Store

TABLES = ("job_logs", "job_events", "jobs", "workers")
HISTORY_JOBS = (
    "INSERT INTO jobs (type, queue, priority, status, args, run_at, created_at, queued_at,"
    " started_at, finished_at, attempt, max_attempts, worker)"
    " SELECT 'noop', 'default', 0, 'SUCCESS', '{{}}', {at}, {at}, {at}, {at}, {at}, 1, 1,"
    " 'bench:1:history' FROM {numbers}"
)
HISTORY_EVENTS = (
    "WITH moves(verb, source, target) AS (VALUES ('submit', NULL, 'PENDING'),"
    " ('claim', 'PENDING', 'QUEUED'), ('start', 'QUEUED', 'RUNNING'),"
    " ('finish', 'RUNNING', 'SUCCESS'))"
    " INSERT INTO job_events (job_id, at, verb, from_status, to_status, actor, attempt)"
    " SELECT jobs.id, jobs.finished_at, moves.verb, moves.source, moves.target, 'bench', 1"
    " FROM jobs CROSS JOIN moves"
)
NUMBERS = {
    "sqlite": "(WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers"
    " WHERE n < {count}) SELECT n FROM numbers)",
    "postgresql": "generate_series(1, {count})",
}


def submit_many_slot(engine: Engine, count: int, batch: int) -> float | None:
    """Bulk submits once `Engine.submit_many` exists (the lead adds it; adjust the call to its
    final signature here). None until then: there is nothing to measure."""
    if not hasattr(engine, "submit_many"):
        return None
    began = time.perf_counter()
    for start in range(0, count, batch):
        engine.submit_many("noop", [{} for _ in range(min(batch, count - start))])
    return time.perf_counter() - began


class JobenginePeer:
    name = "jobengine"
    remaining_sql = (
        "SELECT count(*) FROM jobs WHERE status IN ('PENDING', 'QUEUED', 'RUNNING', 'TO_CANCEL')"
    )
    last_finish_sql = "SELECT max(finished_at) FROM jobs"

    def setup(self, config: Config) -> None:
        Store.open(config.url).close()

    def reset(self, config: Config) -> None:
        store = Store.open(config.url)
        try:
            with store.database.transaction() as transaction:
                if store.database.dialect == "postgresql":  # as every peer: no dead rows left
                    transaction.execute(f"TRUNCATE {', '.join(TABLES)}")
                else:  # SQLite frees a deleted row's pages and index entries at once
                    for table in TABLES:
                        transaction.execute(f"DELETE FROM {table}")
        finally:
            store.close()

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        engine = make_engine(config.url)
        try:
            engine.submit("noop")  # warm: the store open, its schema checked, a connection made
            if batch != 1:
                return submit_many_slot(engine, count, batch)
            began = time.perf_counter()
            for _ in range(count):
                engine.submit("noop")
            return time.perf_counter() - began
        finally:
            engine.close()

    def fill(self, config: Config, count: int) -> float:
        store = Store.open(config.url)
        try:
            fill(store, count, time.time())
            return time.time()
        finally:
            store.close()

    def history(self, config: Config, count: int) -> None:
        store = Store.open(config.url)
        database = store.database
        try:
            numbers = NUMBERS[database.dialect].format(count=count)
            at = str(time.time() - 60)
            with database.transaction() as transaction:
                transaction.execute(HISTORY_JOBS.format(at=at, numbers=numbers))
                transaction.execute(HISTORY_EVENTS)
                transaction.execute("ANALYZE")
        finally:
            store.close()

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda number, frame: stopped.set())
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as folder:
            log_file = str(Path(folder) / "worker.log")
            with worker_process(config.url, 1.0, config.concurrency, log_file):
                ready()
                stopped.wait()

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        engine = make_engine(config.url)
        try:
            for gap in gaps:
                engine.submit("stamp", t=time.time())
                time.sleep(gap)
        finally:
            engine.close()


PEER = JobenginePeer()

if __name__ == "__main__":
    main(PEER, "bench.peers.jobengine_peer")
