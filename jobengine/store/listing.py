"""Reads for listing jobs: filtered pages and counts, ended-job tallies, for people and probes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobengine.model import TERMINAL, Job, Status
from jobengine.store.database import Database

__all__ = ["JobQueries", "JobSearch", "MinuteTally", "job_filters"]

ENDED_SQL = "(" + ", ".join(f"'{status.value}'" for status in sorted(TERMINAL)) + ")"
DURATION = "(finished_at - started_at)"


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


@dataclass(frozen=True)
class JobSearch:
    """Which jobs a listing or a bulk action means. `text` matches the id exactly, or the type
    or the arguments' JSON as a case-insensitive substring. Created times: from <= t < until;
    `after` keeps ids below it, `before` ids above it."""

    status: Sequence[Status] = ()
    type: str | None = None
    queue: str | None = None
    worker: str | None = None
    created_from: float | None = None
    created_until: float | None = None
    text: str | None = None
    after: int | None = None
    before: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause (empty when nothing narrows) and its parameters."""
        clauses, params = job_filters(self.status, self.type, self.queue, self.worker)
        bounds = (
            ("created_at >= ?", self.created_from),
            ("created_at < ?", self.created_until),
            ("id < ?", self.after),
            ("id > ?", self.before),
        )
        for clause, value in bounds:
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if self.text:
            pattern = "%" + self.text.lower().replace("\\", "\\\\").replace("%", "\\%")
            pattern = pattern.replace("_", "\\_") + "%"
            clauses.append(
                "(CAST(id AS TEXT) = ? OR LOWER(type) LIKE ? ESCAPE '\\'"
                " OR LOWER(args) LIKE ? ESCAPE '\\')"
            )
            params += [self.text.strip(), pattern, pattern]
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


@dataclass(frozen=True)
class MinuteTally:
    """Jobs of one status that ended in one minute (minute = seconds since 1970 // 60):
    how many, how many had run (`timed`), their run time in all, and how many ran at most
    each bound of the histogram asked for."""

    minute: int
    status: Status
    count: int
    timed: int
    seconds: float
    at_most: tuple[int, ...]


class JobQueries:
    """Reads the dashboard and the HTTP API need beyond JobStore: search, counts, tallies."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def search(self, wanted: JobSearch, limit: int = 50) -> list[Job]:
        """Jobs newest first; keyset pages: `after` = the older page, `before` = the newer."""
        where, params = wanted.where()
        order = "ASC" if wanted.before is not None and wanted.after is None else "DESC"
        rows = self.database.read(
            f"SELECT * FROM jobs{where} ORDER BY id {order} LIMIT ?", (*params, limit)
        )
        jobs = [Job.from_stored_row(row) for row in rows]
        return sorted(jobs, key=lambda job: -job.id)

    def count(self, wanted: JobSearch, at_most: int) -> int:
        """How many jobs match, counted no further than `at_most` (so it stays cheap)."""
        where, params = wanted.where()
        rows = self.database.read(
            f"SELECT COUNT(*) AS n FROM (SELECT id FROM jobs{where} LIMIT ?) AS matching",
            (*params, at_most),
        )
        return int(rows[0]["n"])

    def ping(self) -> None:
        """One round trip to the database."""
        self.database.read("SELECT 1 AS one")

    def oldest_due(self, now: float) -> Job | None:
        """The PENDING job that has been due the longest, if any."""
        rows = self.database.read(
            "SELECT * FROM jobs WHERE status = 'PENDING' AND run_at <= ?"
            " ORDER BY run_at, id LIMIT 1",
            (now,),
        )
        return Job.from_stored_row(rows[0]) if rows else None

    def count_by_status_and_queue(self, status: Sequence[Status]) -> dict[tuple[Status, str], int]:
        """Jobs per (status, queue) of the given statuses, read through the status index: give
        the statuses of jobs not ended yet (few), not the ended ones (the whole history)."""
        clauses, params = job_filters(status, None, None, None)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.database.read(
            f"SELECT status, queue, COUNT(*) AS n FROM jobs{where} GROUP BY status, queue",
            params,
        )
        return {(Status(row["status"]), str(row["queue"])): int(row["n"]) for row in rows}

    def ended_before(self, until: float) -> dict[Status, int]:
        """Jobs that ended before `until`, per status: reads the whole finished_at index, so
        call it rarely (every ended job has its finished_at)."""
        rows = self.database.read(
            "SELECT status, COUNT(*) AS n FROM jobs"
            f" WHERE finished_at < ? AND status IN {ENDED_SQL} GROUP BY status",
            (until,),
        )
        return {Status(row["status"]): int(row["n"]) for row in rows}

    def ended_tallies(
        self, since: float, until: float | None, bounds: Sequence[float]
    ) -> list[MinuteTally]:
        """Jobs that ended in [since, until) (until None: no end), per minute and status, with
        their run times against `bounds`. The finished_at index serves it."""
        buckets = "".join(
            f", SUM(CASE WHEN {DURATION} <= ? THEN 1 ELSE 0 END) AS b{index}"
            for index in range(len(bounds))
        )
        upper = " AND finished_at < ?" if until is not None else ""
        rows = self.database.read(
            "SELECT CAST(finished_at * 1000 AS BIGINT) / 60000 AS minute, status,"
            f" COUNT(*) AS n, COUNT(started_at) AS timed, SUM({DURATION}) AS seconds"
            f"{buckets} FROM jobs WHERE finished_at >= ?{upper} AND status IN {ENDED_SQL}"
            " GROUP BY 1, 2",
            (*bounds, since, *([until] if until is not None else [])),
        )
        return [
            MinuteTally(
                int(row["minute"]),
                Status(row["status"]),
                int(row["n"]),
                int(row["timed"]),
                float(row["seconds"] or 0.0),
                tuple(int(row[f"b{index}"] or 0) for index in range(len(bounds))),
            )
            for row in rows
        ]

    def related(self, job_id: int, limit: int = 100) -> list[Job]:
        """The job's children (parent = it) and reruns (rerun_of = it), oldest first; the
        partial indexes on parent and rerun_of serve it, however old the job."""
        rows = self.database.read(
            "SELECT * FROM jobs WHERE parent = ? OR rerun_of = ? ORDER BY id LIMIT ?",
            (job_id, job_id, limit),
        )
        return [Job.from_stored_row(row) for row in rows]
