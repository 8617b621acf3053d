"""Reads for listing jobs: filtered pages, counts, rates and histograms for people and probes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobengine.model import Job, Status
from jobengine.store.database import Database

__all__ = ["JobQueries", "job_filters"]


def job_filters(
    status: Sequence[Status], type: str | None, queue: str | None, worker: str | None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if status:
        clauses.append(f"status IN ({', '.join('?' * len(status))})")
        params += [Status(value).value for value in status]
    for column, value in (("type", type), ("queue", queue), ("worker", worker)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


class JobQueries:
    """Reads the dashboard and the HTTP API need beyond JobStore: search, rates, histograms."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def search(
        self,
        status: Sequence[Status] = (),
        type: str | None = None,
        queue: str | None = None,
        worker: str | None = None,
        created_from: float | None = None,
        created_until: float | None = None,
        text: str | None = None,
        limit: int = 50,
        after: int | None = None,
        before: int | None = None,
    ) -> list[Job]:
        """Jobs newest first, filtered; keyset pages: `after` = ids below it (older page),
        `before` = ids above it (newer page). `text` matches the id exactly, or the type or
        the arguments' JSON as a case-insensitive substring. Created times: from <= t < until."""
        clauses, params = job_filters(status, type, queue, worker)
        for clause, value in (("created_at >= ?", created_from), ("created_at < ?", created_until)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if text:
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%")
            pattern = pattern.replace("_", "\\_") + "%"
            clauses.append(
                "(CAST(id AS TEXT) = ? OR LOWER(type) LIKE ? ESCAPE '\\'"
                " OR LOWER(args) LIKE ? ESCAPE '\\')"
            )
            params += [text.strip(), pattern, pattern]
        for clause, value in (("id < ?", after), ("id > ?", before)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if before is not None and after is None else "DESC"
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                f"SELECT * FROM jobs{where} ORDER BY id {order} LIMIT ?", (*params, limit)
            )
        jobs = [Job.from_row(row) for row in rows]
        return sorted(jobs, key=lambda job: -job.id)

    def finished_per_minute(self, since: float, until: float) -> dict[tuple[int, str], int]:
        """Jobs that ended in [since, until) by (minute, status); minute 0 starts at `since`."""
        start = int(since * 1000)
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT (CAST(finished_at * 1000 AS BIGINT) - ?) / 60000 AS minute, status,"
                " COUNT(*) AS n FROM jobs WHERE finished_at >= ? AND finished_at < ?"
                " GROUP BY 1, 2",
                (start, since, until),
            )
        return {(int(row["minute"]), str(row["status"])): int(row["n"]) for row in rows}

    def oldest_due(self, now: float) -> Job | None:
        """The PENDING job that has been due the longest, if any."""
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT * FROM jobs WHERE status = 'PENDING' AND run_at <= ?"
                " ORDER BY run_at, id LIMIT 1",
                (now,),
            )
        return Job.from_row(rows[0]) if rows else None

    def count_by_status_and_queue(
        self, status: Sequence[Status] = ()
    ) -> dict[tuple[Status, str], int]:
        """Jobs per (status, queue), of the given statuses only (all when none are given)."""
        clauses, params = job_filters(status, None, None, None)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                f"SELECT status, queue, COUNT(*) AS n FROM jobs{where} GROUP BY status, queue",
                params,
            )
        return {(Status(row["status"]), str(row["queue"])): int(row["n"]) for row in rows}

    def duration_histogram(
        self, since: float, bounds: Sequence[float]
    ) -> tuple[list[int], int, float]:
        """Run times of jobs that ended since `since`: (count at or below each bound, count,
        sum of seconds)."""
        duration = "(finished_at - started_at)"
        buckets = "".join(
            f", SUM(CASE WHEN {duration} <= ? THEN 1 ELSE 0 END) AS b{index}"
            for index in range(len(bounds))
        )
        with self.database.transaction(write=False) as transaction:
            row = transaction.execute(
                f"SELECT COUNT(*) AS n, SUM({duration}) AS total{buckets} FROM jobs"
                " WHERE finished_at >= ? AND started_at IS NOT NULL",
                (*bounds, since),
            )[0]
        counts = [int(row[f"b{index}"] or 0) for index in range(len(bounds))]
        return counts, int(row["n"]), float(row["total"] or 0.0)

    def related(self, job_id: int, limit: int = 100) -> list[Job]:
        """The job's children (parent = it) and reruns (rerun_of = it), oldest first.

        Both are inserted after the job, so only higher ids are read (the key's order)."""
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT * FROM jobs WHERE id > ? AND (parent = ? OR rerun_of = ?)"
                " ORDER BY id LIMIT ?",
                (job_id, job_id, job_id, limit),
            )
        return [Job.from_row(row) for row in rows]
