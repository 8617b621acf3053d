"""The raw references of the comparison: bare loops, bare inserts and bare wake-ups, measured with
the plain database drivers on the same server and disk, in the same run as the systems.

- claim-and-complete loops (claim with `UPDATE ... RETURNING`, plus `SKIP LOCKED` on
  PostgreSQL, in one transaction; complete in a second), 1 and 100 rows per transaction: on
  PostgreSQL with 2 connections in 2 processes, on SQLite with one connection;
- inserts of one row per transaction (autocommit) and of 1,000 rows per transaction (one
  statement with arrays of the 1,000 rows' values on PostgreSQL, `executemany` on SQLite);
- a wake-up between two processes: NOTIFY to a LISTENing connection on PostgreSQL, a datagram
  through `jobengine.store.wakeup` on SQLite.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import reference
from bench.latency import notify_round_trip
from bench.peers.common import ROOT, STAMPS_VARIABLE
from jobengine.store.sqlite import sqlite_path

INSERTS = (
    "CREATE TABLE bench_inserts (id {key}, type TEXT NOT NULL, queue TEXT NOT NULL,"
    " args TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER NOT NULL,"
    " run_at DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL)"
)
INSERTS_INDEX = (
    "CREATE INDEX bench_inserts_claim ON bench_inserts (priority DESC, run_at, id)"
    " WHERE status = 'PENDING'"
)
ROW = ("noop", "default", "{}", "PENDING", 0)
LISTENER = """
import sys, threading, time
from jobengine.store.wakeup import Wakeup
from bench.peers.common import record_stamp
stop = threading.Event()
def heard(payload):
    if payload == "stop":
        stop.set()
    elif payload:
        record_stamp(float(payload))
    else:
        print("BENCH-READY", flush=True)
Wakeup(sys.argv[1]).listen("bench", heard, stop)
"""


# -- claim-and-complete loops ------------------------------------------------------------------


def sqlite_loop(url: str, batch: int, seconds: float) -> float:
    jobs = int((400_000 if batch > 1 else 40_000) * seconds)
    return reference.sqlite_rate(url, jobs, batch, seconds)


def postgres_loop(url: str, batch: int, seconds: float, connections: int = 2) -> float:
    """Jobs/s of `connections` processes running the bare loop on one table at once."""
    import psycopg

    jobs = int((150_000 if batch > 1 else 15_000) * seconds)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_queue")
        connection.execute(
            reference.TABLE.format(key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
        )
        connection.execute(reference.INDEX)
        connection.execute(
            "INSERT INTO bench_queue (status, priority, run_at)"
            " SELECT 'PENDING', 0, 0 FROM generate_series(1, %s)",
            (jobs,),
        )
        connection.execute("ANALYZE bench_queue")
    command = [sys.executable, "-m", "bench.raw", url, str(batch), str(seconds)]
    children = [
        subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(connections)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdin is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a bare-loop process did not start")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.communicate(timeout=seconds + 60)[0]) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    elapsed = max(r["ended"] for r in results) - min(r["began"] for r in results)
    return sum(r["done"] for r in results) / elapsed


def _loop_child(url: str, batch: int, seconds: float) -> None:
    """One connection of `postgres_loop`: waits for "go", loops, prints what it did."""
    import psycopg

    pick = reference.PICK.format(now="%s", limit="%s") + " FOR UPDATE SKIP LOCKED"
    claim = reference.CLAIM.format(pick=pick)
    with psycopg.connect(url, autocommit=True) as connection:
        print("ready", flush=True)
        sys.stdin.readline()
        began = time.time()
        done = 0
        while time.time() - began < seconds:
            with connection.transaction():
                rows = connection.execute(claim, (time.time(), batch)).fetchall()
            if not rows:
                break
            with connection.transaction():
                connection.execute(
                    "UPDATE bench_queue SET status = 'DONE' WHERE id = ANY(%s)",
                    ([row[0] for row in rows],),
                )
            done += len(rows)
        print(json.dumps({"done": done, "began": began, "ended": time.time()}), flush=True)


# -- inserts -----------------------------------------------------------------------------------


def insert_rates(url: str, single: int, batches: int, seconds: float) -> tuple[float, float]:
    """(rows/s of one-row transactions, rows/s of 1,000-row transactions), each time-boxed."""
    if url.startswith("sqlite"):
        return _sqlite_inserts(url, single, batches, seconds)
    return _postgres_inserts(url, single, batches, seconds)


def _sqlite_inserts(url: str, single: int, batches: int, seconds: float) -> tuple[float, float]:
    connection = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("DROP TABLE IF EXISTS bench_inserts")
    connection.execute(INSERTS.format(key="INTEGER PRIMARY KEY"))
    connection.execute(INSERTS_INDEX)
    sql = "INSERT INTO bench_inserts (type, queue, args, status, priority, run_at, created_at)"
    sql += " VALUES (?, ?, ?, ?, ?, ?, ?)"

    def one_row() -> int:
        now = time.time()
        connection.execute(sql, (*ROW, now, now))
        return 1

    def thousand_rows() -> int:
        now = time.time()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(sql, [(*ROW, now, now)] * 1000)
        connection.execute("COMMIT")
        return 1000

    try:
        return _timed(one_row, single, seconds), _timed(thousand_rows, batches, seconds)
    finally:
        connection.close()


def _postgres_inserts(url: str, single: int, batches: int, seconds: float) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_inserts")
        connection.execute(INSERTS.format(key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        connection.execute(INSERTS_INDEX)
        columns = "(type, queue, args, status, priority, run_at, created_at)"

        def one_row() -> int:
            now = time.time()
            connection.execute(
                f"INSERT INTO bench_inserts {columns} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (*ROW, now, now),
            )
            return 1

        def thousand_rows() -> int:
            now = time.time()
            connection.execute(
                f"INSERT INTO bench_inserts {columns} SELECT * FROM unnest(%s::text[],"
                " %s::text[], %s::text[], %s::text[], %s::int[], %s::float8[], %s::float8[])",
                [[value] * 1000 for value in (*ROW, now, now)],
            )
            return 1000

        return _timed(one_row, single, seconds), _timed(thousand_rows, batches, seconds)


def _timed(step: Any, count: int, seconds: float) -> float:
    """Rows/s of `step` run up to `count` times, stopping early after `seconds`."""
    began = time.perf_counter()
    rows = 0
    for _ in range(count):
        rows += step()
        if time.perf_counter() - began > seconds:
            break
    return rows / (time.perf_counter() - began)


# -- wake-ups ----------------------------------------------------------------------------------


def wakeup_round_trip(samples: int, gap: float = 0.002) -> list[float]:
    """Seconds from a `notify` in this process to the listener in another one hearing it."""
    from jobengine.store.wakeup import Wakeup

    with tempfile.TemporaryDirectory(prefix="bench-wakeup-") as folder:
        database, stamps = str(Path(folder) / "x.db"), Path(folder) / "stamps"
        listener = subprocess.Popen(
            [sys.executable, "-c", LISTENER, database],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, STAMPS_VARIABLE: str(stamps)},
        )
        wakeup = Wakeup(database)
        try:
            assert listener.stdout is not None
            if listener.stdout.readline().strip() != "BENCH-READY":
                raise RuntimeError("the wake-up listener did not start")
            for _ in range(samples):
                wakeup.notify("bench", repr(time.time()))
                time.sleep(gap)
            wakeup.notify("bench", "stop")
            listener.wait(30)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(10)
            wakeup.close()
        return [float(line) for line in stamps.read_text().split()]


def postgres_wakeup(url: str, samples: int) -> list[float]:
    return [value / 1000 for value in notify_round_trip(url, samples)]


if __name__ == "__main__":
    _loop_child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
