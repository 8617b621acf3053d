"""The job_logs table: each job's own log lines, written in batches, read by job and attempt."""

from __future__ import annotations

from collections.abc import Sequence

from jobengine.model import LogLine
from jobengine.store.database import Database

__all__ = ["LogLine", "LogStore"]


class LogStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def append(self, lines: Sequence[LogLine]) -> None:
        """Write a batch of lines in one transaction."""
        if not lines:
            return
        with self.database.transaction() as transaction:
            transaction.insert_rows(
                "job_logs",
                ("job_id", "attempt", "at", "level", "text"),
                [(line.job_id, line.attempt, line.at, line.level, line.text) for line in lines],
            )

    def read(self, job_id: int, after: int = 0, limit: int = 10_000) -> list[LogLine]:
        """Lines of a job in the order written, from the line after id `after`."""
        rows = self.database.read(
            "SELECT * FROM job_logs WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
            (job_id, after, limit),
        )
        return [LogLine.from_row(row) for row in rows]
