"""Job, Status and the table of allowed moves; pure, no I/O."""

from __future__ import annotations

import enum
import json
import operator
from dataclasses import dataclass, field, fields
from typing import Any

from jobengine.errors import IllegalMove


class Status(enum.StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    TO_CANCEL = "TO_CANCEL"
    CANCELED = "CANCELED"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILURE = "FAILURE"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.CANCELED, Status.SUCCESS, Status.WARNING, Status.FAILURE})
OUTCOMES = frozenset({Status.SUCCESS, Status.WARNING, Status.FAILURE})
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.TO_CANCEL})

P, Q, R, T, C = Status.PENDING, Status.QUEUED, Status.RUNNING, Status.TO_CANCEL, Status.CANCELED

# (from, to) -> the one verb that names the move everywhere.
MOVES: dict[tuple[Status, Status], str] = {
    (P, Q): "claim",
    (P, C): "cancel",
    (Q, C): "cancel",
    (Q, R): "start",
    (Q, P): "release",
    (R, T): "cancel",
    (R, P): "retry",
    (T, P): "retry",
    (T, C): "cancel",
}
for _outcome in OUTCOMES:  # RUNNING or TO_CANCEL -> SUCCESS, WARNING or FAILURE
    MOVES[(R, _outcome)] = "finish"
    MOVES[(T, _outcome)] = "finish"

# reap is a second verb for RUNNING/TO_CANCEL -> FAILURE (worker dead, timed out, crashed).
REAP_MOVES = frozenset({(R, Status.FAILURE), (T, Status.FAILURE)})

VERBS = frozenset(MOVES.values()) | {"submit", "reap"}


def check_move(source: Status, target: Status, verb: str) -> None:
    """Raise IllegalMove unless `verb` may move a job from `source` to `target`."""
    allowed = MOVES.get((source, target))
    if verb == "reap" and (source, target) in REAP_MOVES:
        return
    if allowed is None:
        raise IllegalMove(
            f"a job cannot move from {source} to {target}; "
            f"allowed from {source}: {sorted(t.value for s, t in MOVES if s == source) or 'none'}"
        )
    if allowed != verb:
        raise IllegalMove(f"{source} -> {target} is a '{allowed}', not a '{verb}'")


@dataclass(frozen=True)
class Job:
    """One row of the jobs table, as the engine sees it."""

    id: int
    type: str
    queue: str
    priority: int
    status: Status
    args: dict[str, Any]
    run_at: float
    created_at: float
    attempt: int
    max_attempts: int
    timeout: float | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    heartbeat: float | None = None
    output: str | None = None
    errors: str | None = None
    result: Any = None
    progress: float | None = None
    parent: int | None = None
    rerun_of: int | None = None
    schedule: str | None = None
    fire_time: float | None = None
    cancel_requested_at: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """The job a row holds; ValueError if its status or JSON cannot be read."""
        try:  # a row of the jobs table has every field: read at once (a third of the cost)
            values: dict[str, Any] = dict(zip(JOB_FIELDS, _fields_of(row), strict=True))
        except KeyError:
            values = {name: row.get(name) for name in JOB_FIELDS}
        status = STATUSES.get(row["status"])  # a tenth of the cost of Status(...)
        values["status"] = status if status is not None else Status(row["status"])
        args = row.get("args")
        values["args"] = {} if args == "{}" or not args else json.loads(args)
        values["result"] = json.loads(row["result"]) if row.get("result") else None
        # Filled in directly: a frozen dataclass sets its 25 fields one guarded call at a time,
        # half the cost of reading a claimed job.
        job = object.__new__(cls)
        job.__dict__.update(values)
        return job

    @classmethod
    def from_stored_row(cls, row: dict[str, Any]) -> Job:
        """The job a row holds, to read and show, whoever wrote it: where SQLite (which keeps any
        value in any column) holds text for a number, the number reads as 0 (a count or a time
        it needs) or None; unreadable JSON reads as the text it is, under "unreadable"."""
        try:
            job = cls.from_row(row)
        except (ValueError, TypeError):
            job = None
        if job is not None and not mistyped(row):
            return job
        fixed = dict(row)
        for name in NUMBERS:
            if _not_number(fixed.get(name)):
                fixed[name] = 0 if name in NEEDED_NUMBERS else None
        for name in ("args", "result"):
            fixed[name] = _readable_json(fixed.get(name))
        return cls.from_row(fixed)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["status"] = self.status.value
        return data


JOB_FIELDS = tuple(Job.__dataclass_fields__)
_fields_of = operator.itemgetter(*JOB_FIELDS)
STATUSES = {status.value: status for status in Status}

NEEDED_NUMBERS = ("priority", "attempt", "max_attempts", "run_at", "created_at")
NUMBERS = (
    *NEEDED_NUMBERS,
    *("timeout", "queued_at", "started_at", "finished_at", "heartbeat", "progress"),
    *("fire_time", "cancel_requested_at"),
)


NUMBER_TYPES = (int, float)


def mistyped(row: dict[str, Any], names: tuple[str, ...] = NUMBERS) -> str:
    """The first of the row's fields `names` that holds something else than a number or
    nothing ('' if none): SQLite keeps any value in any column. (Read for every claimed job:
    a loop over exact types, 0.4 us a job where a generator over isinstance took 1.1.)"""
    for name in names:
        if _not_number(row.get(name)):
            return name
    return ""


def _not_number(value: Any) -> bool:
    """Neither None, an int nor a float (a bool is no number; the drivers give exact types)."""
    return value is not None and type(value) not in NUMBER_TYPES


def _readable_json(text: Any) -> str | None:
    """`text` if it is JSON (or empty), else a JSON object holding it as "unreadable"."""
    if not text:
        return None
    try:
        json.loads(text)
    except (ValueError, TypeError):
        return json.dumps({"unreadable": str(text)})
    return str(text)


@dataclass(frozen=True)
class Event:
    """One row of job_events: a move, who made it and why."""

    id: int
    job_id: int
    at: float
    verb: str
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str | None
    attempt: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["from_status"] = Status(row["from_status"]) if row["from_status"] else None
        values["to_status"] = Status(row["to_status"])
        return cls(**values)


@dataclass  # not frozen: a frozen one's __init__ was 30% of submit_many's CPU on PostgreSQL
class NewJob:
    """A job about to be inserted, already validated; its fields are the columns it sets."""

    type: str
    args: str  # the arguments as JSON text
    queue: str
    priority: int
    run_at: float
    max_attempts: int
    timeout: float | None = None
    parent: int | None = None
    rerun_of: int | None = None
    schedule: str | None = None
    fire_time: float | None = None


NEW_JOB_COLUMNS = tuple(item.name for item in fields(NewJob))
JOB_COLUMNS = frozenset(Job.__dataclass_fields__) - {"id"}
assert set(NEW_JOB_COLUMNS) <= JOB_COLUMNS, "every column a new job sets is a column of Job"


@dataclass(frozen=True)
class Move:
    """One guarded status change: applied only if the job is still (status, attempt[, worker])."""

    job_id: int
    attempt: int
    source: Status
    target: Status
    verb: str
    actor: str
    reason: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None

    def __post_init__(self) -> None:
        check_move(self.source, self.target, self.verb)
        unknown = set(self.changes) - JOB_COLUMNS
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")


@dataclass(frozen=True)
class LogLine:
    """One line of a job's own log."""

    job_id: int
    attempt: int
    at: float
    level: str
    text: str
    id: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LogLine:
        return cls(row["job_id"], row["attempt"], row["at"], row["level"], row["text"], row["id"])
