"""The reference: a bare claim-and-complete loop on its own table, with the raw database driver."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from jobengine.store.sqlite import sqlite_path

TABLE = (
    "CREATE TABLE bench_queue (id {key}, status TEXT NOT NULL, priority INTEGER NOT NULL,"
    " run_at DOUBLE PRECISION NOT NULL)"
)
INDEX = (
    "CREATE INDEX bench_queue_claim ON bench_queue (priority DESC, run_at, id)"
    " WHERE status = 'PENDING'"
)
PICK = (
    "SELECT id FROM bench_queue WHERE status = 'PENDING' AND run_at <= {now}"
    " ORDER BY priority DESC, run_at, id LIMIT {limit}"
)
CLAIM = "UPDATE bench_queue SET status = 'RUNNING' WHERE id IN ({pick}) RETURNING id"


def sqlite_rate(url: str, jobs: int, batch: int, seconds: float) -> float:
    """Jobs/s of claim (one transaction) then complete (another) on SQLite, `batch` at a time."""
    connection = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("DROP TABLE IF EXISTS bench_queue")
    connection.execute(TABLE.format(key="INTEGER PRIMARY KEY"))
    connection.execute(INDEX)
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO bench_queue (status, priority, run_at) VALUES ('PENDING', 0, 0)",
        [()] * jobs,
    )
    connection.execute("COMMIT")
    claim = CLAIM.format(pick=PICK.format(now="?", limit="?"))
    began = time.perf_counter()
    done = 0
    while time.perf_counter() - began < seconds:
        connection.execute("BEGIN IMMEDIATE")
        ids = [row[0] for row in connection.execute(claim, (time.time(), batch)).fetchall()]
        connection.execute("COMMIT")
        if not ids:
            break
        connection.execute("BEGIN IMMEDIATE")
        marks = ", ".join("?" * len(ids))
        connection.execute(f"UPDATE bench_queue SET status = 'DONE' WHERE id IN ({marks})", ids)
        connection.execute("COMMIT")
        done += len(ids)
    elapsed = time.perf_counter() - began
    connection.close()
    return done / elapsed


def postgres_rate(url: str, jobs: int, batch: int, seconds: float) -> float:
    """The same loop on PostgreSQL, claiming with FOR UPDATE SKIP LOCKED."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_queue")
        connection.execute(TABLE.format(key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        connection.execute(INDEX)
        connection.execute(
            "INSERT INTO bench_queue (status, priority, run_at)"
            " SELECT 'PENDING', 0, 0 FROM generate_series(1, %s)",
            (jobs,),
        )
        connection.execute("ANALYZE bench_queue")
        claim = CLAIM.format(pick=PICK.format(now="%s", limit="%s") + " FOR UPDATE SKIP LOCKED")
        return _postgres_loop(connection, claim, batch, seconds)


def _postgres_loop(connection: Any, claim: str, batch: int, seconds: float) -> float:
    began = time.perf_counter()
    done = 0
    while time.perf_counter() - began < seconds:
        with connection.transaction():
            ids = [row[0] for row in connection.execute(claim, (time.time(), batch)).fetchall()]
        if not ids:
            break
        with connection.transaction():
            connection.execute("UPDATE bench_queue SET status = 'DONE' WHERE id = ANY(%s)", (ids,))
        done += len(ids)
    return done / (time.perf_counter() - began)


def rate(backend_is_sqlite: bool, url: str, jobs: int, batch: int, seconds: float) -> float:
    """Jobs/s of the bare loop over `jobs` queued jobs, stopping early after `seconds`."""
    measure = sqlite_rate if backend_is_sqlite else postgres_rate
    return measure(url, jobs, batch, seconds)
