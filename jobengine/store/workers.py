"""The workers table: who is alive, what each serves, and requests sent to them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobengine.store.database import Database

RUNNING, DRAINING, STOPPED, DEAD = "running", "draining", "stopped", "dead"
LIVE = (RUNNING, DRAINING)


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    started_at: float
    heartbeat: float
    queues: list[str]
    concurrency: int
    version: str
    state: str
    stopped_at: float | None = None
    request: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerRecord:
        values = dict(row)
        values["queues"] = json.loads(row["queues"])
        return cls(**values)


class WorkerStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def register(self, record: WorkerRecord) -> None:
        with self.database.transaction() as transaction:
            transaction.execute(
                "INSERT INTO workers (id, host, pid, started_at, heartbeat, queues, concurrency,"
                " version, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.host,
                    record.pid,
                    record.started_at,
                    record.heartbeat,
                    json.dumps(record.queues),
                    record.concurrency,
                    record.version,
                    record.state,
                ),
            )

    def beat(self, worker: str, now: float, state: str) -> str | None:
        """Record a heartbeat for the worker and its active jobs; return a pending request."""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                "UPDATE workers SET heartbeat = ?, state = ? WHERE id = ? RETURNING request",
                (now, state, worker),
            )
            transaction.execute(
                "UPDATE jobs SET heartbeat = ? WHERE worker = ?"
                " AND status IN ('QUEUED', 'RUNNING', 'TO_CANCEL')",
                (now, worker),
            )
        return rows[0]["request"] if rows else None

    def stop(self, worker: str, now: float) -> None:
        with self.database.transaction() as transaction:
            transaction.execute(
                "UPDATE workers SET state = ?, stopped_at = ?, heartbeat = ? WHERE id = ?",
                (STOPPED, now, now, worker),
            )

    def request(self, request: str, workers: Sequence[str] = ()) -> int:
        """Ask running workers (all, or those named) to act on `request`, e.g. 'restart'."""
        clause = f" AND id IN ({', '.join('?' * len(workers))})" if workers else ""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                f"UPDATE workers SET request = ? WHERE state != ?{clause} RETURNING id",
                (request, STOPPED, *workers),
            )
        return len(rows)

    def clear_request(self, worker: str) -> None:
        with self.database.transaction() as transaction:
            transaction.execute("UPDATE workers SET request = NULL WHERE id = ?", (worker,))

    def find(self, include_stopped: bool = False) -> list[WorkerRecord]:
        where = "" if include_stopped else f" WHERE state != '{STOPPED}'"
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(f"SELECT * FROM workers{where} ORDER BY started_at")
        return [WorkerRecord.from_row(row) for row in rows]

    def mark(self, worker: str, state: str, expected: str, now: float) -> bool:
        """Guarded state change of a worker row (e.g. running -> dead by a reaper)."""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                "UPDATE workers SET state = ?, stopped_at = ? WHERE id = ? AND state = ?"
                " RETURNING id",
                (state, now, worker, expected),
            )
        return bool(rows)

    def find_dead(self, cutoff: float) -> list[WorkerRecord]:
        """Workers that claim to be alive but have not beaten since `cutoff`."""
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT * FROM workers WHERE state IN (?, ?) AND heartbeat < ?",
                (*LIVE, cutoff),
            )
        return [WorkerRecord.from_row(row) for row in rows]

    def on_host(self, host: str) -> list[WorkerRecord]:
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT * FROM workers WHERE host = ? AND state IN (?, ?)", (host, *LIVE)
            )
        return [WorkerRecord.from_row(row) for row in rows]

    def orphaned_jobs(self, cutoff: float) -> list[dict[str, Any]]:
        """Active jobs whose worker is not alive (gone, stopped, dead, or silent since cutoff)."""
        with self.database.transaction(write=False) as transaction:
            return transaction.execute(
                "SELECT j.id, j.attempt, j.status, j.worker, j.type, j.max_attempts,"
                " w.heartbeat AS worker_heartbeat, w.state AS worker_state FROM jobs j"
                " LEFT JOIN workers w ON w.id = j.worker"
                " WHERE j.status IN ('QUEUED', 'RUNNING', 'TO_CANCEL')"
                " AND (w.id IS NULL OR w.state NOT IN (?, ?) OR w.heartbeat < ?)",
                (*LIVE, cutoff),
            )
