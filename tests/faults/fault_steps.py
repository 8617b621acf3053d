"""Shared steps of the fault-injection tests: raw reads, write-lock probes and the invariants."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from jobengine import Engine

TERMINAL = frozenset({"SUCCESS", "WARNING", "FAILURE", "CANCELED"})
ACTIVE = frozenset({"QUEUED", "RUNNING", "TO_CANCEL"})

# Run in a process of its own: can a brand-new connection take the write lock within a second?
LOCK_PROBE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[2]), isolation_level=None)
try:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("ROLLBACK")
    print("free")
except sqlite3.OperationalError as error:
    print(f"held: {error}")
"""


def read(engine: Engine, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of a read-only query, without decoding them as jobs (a broken row stays readable)."""
    with engine.store.database.transaction(write=False) as transaction:
        return transaction.execute(sql, params)


def statuses(engine: Engine, job_ids: Iterable[int]) -> dict[int, str]:
    """The status of each job, read as raw text."""
    wanted = list(job_ids)
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    rows = read(engine, f"SELECT id, status FROM jobs WHERE id IN ({marks})", wanted)
    return {int(row["id"]): str(row["status"]) for row in rows}


def write_lock_free(path: str, timeout: float = 1.0) -> str:
    """'free' if a new connection in another process gets BEGIN IMMEDIATE within `timeout`."""
    probe = subprocess.run(
        [sys.executable, "-c", LOCK_PROBE, path, str(timeout)],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    return probe.stdout.strip() or f"the probe failed: {probe.stderr.strip()}"


def write_lock_free_here(path: str, timeout: float = 1.0) -> bool:
    """The same probe from a fresh connection of this process (cheaper, same file locks)."""
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def events_after_terminal(engine: Engine) -> list[str]:
    """Every event row (in id order) that comes after its job's terminal event."""
    columns = "id, job_id, verb, from_status, to_status"
    rows = read(engine, f"SELECT {columns} FROM job_events ORDER BY id")
    ended: dict[int, int] = {}
    late = []
    for row in rows:
        job_id = int(row["job_id"])
        if job_id in ended:
            late.append(
                f"job {job_id}: event {row['id']} ({row['verb']} {row['from_status']} -> "
                f"{row['to_status']}) after its terminal event {ended[job_id]}"
            )
        elif row["to_status"] in TERMINAL:
            ended[job_id] = int(row["id"])
    return late


class Unprintable(Exception):
    """An exception that cannot be turned into text: its __str__ and __repr__ raise."""

    def __str__(self) -> str:
        raise RuntimeError("this message cannot be read")

    def __repr__(self) -> str:
        raise RuntimeError("this representation cannot be read")


def raise_unprintable() -> None:
    """A job (importable, so process isolation can run it) that raises Unprintable."""
    raise Unprintable()


def answer() -> int:
    """A job that simply succeeds."""
    return 42


def register_child_start_types(engine: Engine) -> Engine:
    """The job types of the child-start test, in the worker process and in the test."""
    engine.job(answer, name="warm_up")
    engine.job(answer, name="in_child", isolation="process")
    engine.job(answer, name="in_child_retried", isolation="process", max_attempts=2)
    return engine
