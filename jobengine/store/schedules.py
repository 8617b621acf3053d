"""The schedules table: its rows, and all the scheduler's SQL."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from typing import Any

from jobengine.errors import InvalidSchedule
from jobengine.model import Status
from jobengine.store.database import Database, Transaction

log = logging.getLogger("jobengine.scheduler")
UNENDED = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.TO_CANCEL)
RUN_COLUMNS = "id, schedule, status, fire_time, created_at, run_at, finished_at"


@dataclass(frozen=True)
class Schedule:
    """One row of the schedules table."""

    name: str
    type: str
    args: dict[str, Any]
    expression: str | None
    every: float | None
    timezone: str
    enabled: bool
    missed: str
    missed_window: float
    overlap: str
    queue: str | None
    priority: int | None
    origin: str
    last_fire_time: float | None
    next_fire_time: float | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        values = {name: row[name] for name in COLUMNS}
        values["args"] = json.loads(row["args"]) if row["args"] else {}
        values["enabled"] = bool(row["enabled"])
        return cls(**values)

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in COLUMNS}
        row["args"] = encode(self.args)
        return row


COLUMNS = tuple(field.name for field in fields(Schedule))


@dataclass(frozen=True)
class Run:
    """A job a schedule fired (fire_time is None for a run started by hand)."""

    job_id: int
    schedule: str
    status: Status
    fire_time: float | None
    created_at: float
    run_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        return cls(
            job_id=int(row["id"]),
            schedule=row["schedule"],
            status=Status(row["status"]),
            fire_time=row["fire_time"],
            created_at=row["created_at"],
            run_at=row["run_at"],
            finished_at=row["finished_at"],
        )


def encode(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True)


class ScheduleStore:
    """The schedules table, and the runs a schedule fired (rows of the jobs table)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def insert(self, transaction: Transaction, schedule: Schedule) -> bool:
        """Insert a schedule; False (nothing written) when its name exists already."""
        row = schedule.to_row()
        values = self.database.placeholders(len(row))
        rows = transaction.execute(
            f"INSERT INTO schedules ({', '.join(row)}) VALUES ({values})"
            " ON CONFLICT (name) DO NOTHING RETURNING name",
            list(row.values()),
        )
        return bool(rows)

    def read(self, transaction: Transaction, name: str, lock: bool = False) -> Schedule | None:
        """One schedule; with `lock`, hold its row (PostgreSQL: None if another holds it)."""
        sql = "SELECT * FROM schedules WHERE name = ?"
        if lock:  # SQLite: BEGIN IMMEDIATE already holds every row
            sql += self.database.row_lock_skipping
        rows = transaction.execute(sql, (name,))
        if not rows:
            return None
        readable, broken = _readable(rows)
        if broken:
            raise InvalidSchedule(
                f"schedule {name!r}: its row cannot be read ({broken[str(name)]}); remove it"
                f" with `jobengine schedules remove {name}` and define it again"
            )
        return readable[0]

    def get(self, name: str) -> Schedule | None:
        with self.database.transaction(write=False) as transaction:
            return self.read(transaction, name)

    def all(self) -> list[Schedule]:
        """Every readable schedule (see `unreadable` for the others)."""
        rows = self.database.read("SELECT * FROM schedules ORDER BY name")
        return _readable(rows)[0]

    def unreadable(self) -> dict[str, str]:
        """Schedules whose row this version cannot read: name -> what is wrong with it."""
        rows = self.database.read("SELECT * FROM schedules ORDER BY name")
        return _readable(rows)[1]

    def due(self, now: float) -> list[Schedule]:
        """Enabled schedules whose next fire time has come."""
        rows = self.database.read(
            "SELECT * FROM schedules WHERE enabled = ? AND next_fire_time <= ?"
            " ORDER BY next_fire_time, name",
            (True, now),
        )
        readable, broken = _readable(rows)
        for name, problem in broken.items():
            log.error("schedule %s: not fired, its row cannot be read: %s", name, problem)
        return readable

    def update(self, transaction: Transaction, name: str, changes: dict[str, Any]) -> bool:
        """Change columns of one schedule; False when it does not exist."""
        unknown = set(changes) - set(COLUMNS) - {"name"}
        if unknown or "name" in changes:
            raise ValueError(f"not changeable schedule columns: {sorted(unknown or {'name'})}")
        values = [encode(v) if k == "args" else v for k, v in changes.items()]
        assignments = ", ".join(f"{column} = ?" for column in changes)
        rows = transaction.execute(
            f"UPDATE schedules SET {assignments} WHERE name = ? RETURNING name", (*values, name)
        )
        return bool(rows)

    def delete(self, name: str) -> bool:
        rows = self.database.write("DELETE FROM schedules WHERE name = ? RETURNING name", (name,))
        return bool(rows)

    def count(self) -> int:
        rows = self.database.read("SELECT COUNT(*) AS n FROM schedules")
        return int(rows[0]["n"])

    def unended_runs(self, transaction: Transaction, name: str, before: float) -> list[Run]:
        """Runs of `name` not ended yet, fired before `before` or started by hand."""
        statuses = [status.value for status in UNENDED]
        rows = transaction.execute(
            f"SELECT {RUN_COLUMNS} FROM jobs WHERE schedule = ?"
            f" AND status IN ({self.database.placeholders(len(statuses))})"
            " AND (fire_time IS NULL OR fire_time < ?) ORDER BY id",
            (name, *statuses, before),
        )
        return [Run.from_row(row) for row in rows]

    def runs(self, name: str, limit: int = 10) -> list[Run]:
        """The newest runs of one schedule, newest first."""
        rows = self.database.read(
            f"SELECT {RUN_COLUMNS} FROM jobs WHERE schedule = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        )
        return [Run.from_row(row) for row in rows]

    def last_runs(self) -> dict[str, Run]:
        """The newest run of every schedule that has one."""
        rows = self.database.read(
            f"SELECT {RUN_COLUMNS} FROM jobs WHERE id IN"
            " (SELECT MAX(id) FROM jobs WHERE schedule IS NOT NULL GROUP BY schedule)"
        )
        return {row["schedule"]: Run.from_row(row) for row in rows}


def _readable(rows: list[dict[str, Any]]) -> tuple[list[Schedule], dict[str, str]]:
    """The rows that read as schedules, and for the others what is wrong: one bad row (written
    by hand or by another version) must not stop the rest."""
    readable, broken = [], {}
    for row in rows:
        try:
            readable.append(Schedule.from_row(row))
        except (ValueError, TypeError, KeyError) as error:
            broken[str(row.get("name"))] = f"{type(error).__name__}: {error}"
    return readable, broken
