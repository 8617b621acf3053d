"""Reads for diagnosis (why, doctor, the support bundle) and the commands table, through which a
worker is asked for what only it knows (the live stack of a job)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import Any

from jobengine.model import Job, LogLine, Status
from jobengine.store.database import Database
from jobengine.store.jobs import CHANNEL, pick_sql
from jobengine.store.workers import ACTIVE_SQL, LIVE, WorkerRecord

COMMAND_NOTICE = "command"  # the payload that tells workers to read their commands
UNENDED_SQL = "('PENDING', 'QUEUED', 'RUNNING', 'TO_CANCEL')"


@dataclass(frozen=True)
class DueGroup:
    """Due PENDING jobs of one queue and type: how many, and since when the oldest is due."""

    queue: str
    type: str
    count: int
    oldest_run_at: float


class _Reader:
    """Queries of one database, each read on its own (`Database.read`)."""

    def __init__(self, database: Database) -> None:
        self.database = database


class DiagnosisQueries(_Reader):
    """Read-only questions `why`, `doctor` and the support bundle ask of the tables."""

    def round_trip(self, tries: int = 3) -> float:
        """Seconds of the quickest of `tries` round trips of a trivial query."""
        best = float("inf")
        with self.database.transaction(write=False) as transaction:
            for _ in range(tries):
                started = time.perf_counter()
                transaction.execute("SELECT 1 AS one")
                best = min(best, time.perf_counter() - started)
        return best

    def claim_pages(self, now: float) -> int | None:
        """The pages of the claim index a claim reads to find the next due job (None where
        the backend leaves no dead entries in it)."""
        return self.database.pages_read((pick_sql(self.database, 0, 0, lock=False), (now, 1)))

    def worker(self, worker_id: str) -> WorkerRecord | None:
        """One worker's row, whatever its state."""
        rows = self.database.read("SELECT * FROM workers WHERE id = ?", (worker_id,))
        return WorkerRecord.from_row(rows[0]) if rows else None

    def jobs_ahead(self, job: Job, now: float) -> int:
        """Due PENDING jobs of the job's queue that a worker claims before it (priority, then
        run_at, then id: the claim's order)."""
        priority, run_at = job.priority, job.run_at
        rows = self.database.read(
            "SELECT COUNT(*) AS n FROM jobs WHERE status = 'PENDING' AND queue = ?"
            " AND run_at <= ? AND id != ? AND (priority > ? OR (priority = ?"
            " AND (run_at < ? OR (run_at = ? AND id < ?))))",
            (job.queue, now, job.id, priority, priority, run_at, run_at, job.id),
        )
        return int(rows[0]["n"])

    def last_log_line(self, job_id: int, attempt: int) -> LogLine | None:
        """The newest line the job's attempt wrote, if any."""
        rows = self.database.read(
            "SELECT * FROM job_logs WHERE job_id = ? AND attempt = ? ORDER BY id DESC LIMIT 1",
            (job_id, attempt),
        )
        return LogLine.from_row(rows[0]) if rows else None

    def due_groups(self, now: float) -> list[DueGroup]:
        """Due PENDING jobs counted by queue and type."""
        rows = self.database.read(
            "SELECT queue, type, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs"
            " WHERE status = 'PENDING' AND run_at <= ? GROUP BY queue, type"
            " ORDER BY queue, type",
            (now,),
        )
        return [
            DueGroup(str(row["queue"]), str(row["type"]), int(row["n"]), float(row["oldest"]))
            for row in rows
        ]

    def stuck_candidates(
        self, now: float, dead_after: float, kill_grace: float, limit: int = 1000
    ) -> list[Job]:
        """Active jobs whose owner is not a live worker, RUNNING ones past their timeout plus
        `kill_grace`, and TO_CANCEL ones asked to stop longer than `kill_grace` ago."""
        rows = self.database.read(
            "SELECT j.* FROM jobs j LEFT JOIN workers w ON w.id = j.worker"
            f" WHERE j.status IN {ACTIVE_SQL} AND (w.id IS NULL OR w.state NOT IN (?, ?)"
            " OR w.heartbeat < ? OR (j.status = 'RUNNING' AND j.timeout IS NOT NULL"
            " AND j.started_at + j.timeout + ? < ?)"
            " OR (j.status = 'TO_CANCEL' AND j.cancel_requested_at < ?)) ORDER BY j.id LIMIT ?",
            (*LIVE, now - dead_after, kill_grace, now, now - kill_grace, limit),
        )
        return [Job.from_stored_row(row) for row in rows]

    def never_due(self, limit: int = 10, job_id: int | None = None) -> list[tuple[int, Any]]:
        """PENDING jobs (or job `job_id`) whose run_at is not a number, with what it holds: a
        row written by hand (SQLite keeps any value in any column) that no claim finds due."""
        # Every number equals itself plus 0; SQLite's text or blob does not equal the number
        # that `+ 0` makes of it. PostgreSQL's column holds numbers only.
        sql = "SELECT id, run_at FROM jobs WHERE status = 'PENDING' AND NOT (run_at = run_at + 0)"
        params: list[Any] = []
        if job_id is not None:
            sql, params = sql + " AND id = ?", [job_id]
        rows = self.database.read(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [(int(row["id"]), row["run_at"]) for row in rows]

    def worth_a_look(self, failed_since: float, limit: int) -> list[Job]:
        """Jobs not ended, and jobs that failed since `failed_since`, newest first."""
        rows = self.database.read(
            f"SELECT * FROM jobs WHERE status IN {UNENDED_SQL}"
            " OR (status = ? AND finished_at >= ?) ORDER BY id DESC LIMIT ?",
            (Status.FAILURE.value, failed_since, limit),
        )
        return [Job.from_stored_row(row) for row in rows]


@dataclass(frozen=True)
class Command:
    """A request to one worker and, once it answered, its answer (a JSON object)."""

    id: int
    worker: str
    job_id: int | None
    kind: str
    created_at: float
    answered_at: float | None
    answer: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Command:
        values = {field.name: row[field.name] for field in fields(cls)}
        return cls(**values | {"answer": json.loads(row["answer"]) if row["answer"] else None})


class CommandStore(_Reader):
    """The commands table: ask a worker, let it answer, read the answer."""

    def ask(self, worker: str, kind: str, job_id: int | None, now: float) -> int:
        """Insert a command for `worker` and wake the workers once it commits; its id."""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                "INSERT INTO commands (worker, job_id, kind, created_at) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (worker, job_id, kind, now),
            )
            self.database.notify_on_commit(transaction, CHANNEL, COMMAND_NOTICE)
        return int(rows[0]["id"])

    def unanswered(self, worker: str) -> list[Command]:
        """The commands `worker` has not answered yet, oldest first."""
        rows = self.database.read(
            "SELECT * FROM commands WHERE worker = ? AND answered_at IS NULL ORDER BY id",
            (worker,),
        )
        return [Command.from_row(row) for row in rows]

    def answer(self, command_id: int, answer: dict[str, Any], now: float) -> None:
        self.database.write(
            "UPDATE commands SET answer = ?, answered_at = ? WHERE id = ?",
            (json.dumps(answer), now, command_id),
        )

    def get(self, command_id: int) -> Command | None:
        rows = self.database.read("SELECT * FROM commands WHERE id = ?", (command_id,))
        return Command.from_row(rows[0]) if rows else None

    def forget(self, command_id: int, older_than: float) -> None:
        """Delete a command that was read, and every command older than `older_than` (answered
        or not: their askers have given up)."""
        self.database.write(
            "DELETE FROM commands WHERE id = ? OR created_at < ?", (command_id, older_than)
        )
