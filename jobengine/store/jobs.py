"""The jobs table and its audit trail: insert, read, claim and every guarded move."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobengine.errors import JobNotFound, MoveConflict
from jobengine.model import Event, Job, Status, check_move
from jobengine.store.database import Database, Transaction

CHANNEL = "jobengine"
CANCEL_NOTICE = "cancel"  # the payload that tells workers to look for cancel requests
JOB_COLUMNS = frozenset(Job.__dataclass_fields__) - {"id"}
EVENT_SQL = (
    "INSERT INTO job_events (job_id, at, verb, from_status, to_status, actor, reason, attempt) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class NewJob:
    """A job about to be inserted, already validated by the engine."""

    type: str
    args_json: str
    queue: str
    priority: int
    run_at: float
    max_attempts: int
    timeout: float | None = None
    parent: int | None = None
    rerun_of: int | None = None
    schedule: str | None = None
    fire_time: float | None = None


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


class JobStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def insert(self, transaction: Transaction, job: NewJob, now: float, actor: str) -> int | None:
        """Insert a PENDING job with its submit event; None if its (schedule, fire time) exists."""
        if job.parent is not None and not transaction.execute(
            "SELECT 1 FROM jobs WHERE id = ?", (job.parent,)
        ):
            raise JobNotFound(f"no job has id {job.parent}; a parent must be an existing job")
        conflict = " ON CONFLICT (schedule, fire_time) DO NOTHING" if job.schedule else ""
        rows = transaction.execute(
            "INSERT INTO jobs (type, queue, priority, status, args, run_at, created_at, attempt,"
            " max_attempts, timeout, parent, rerun_of, schedule, fire_time)"
            f" VALUES (?, ?, ?, 'PENDING', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?){conflict} RETURNING id",
            (
                job.type,
                job.queue,
                job.priority,
                job.args_json,
                job.run_at,
                now,
                job.max_attempts,
                job.timeout,
                job.parent,
                job.rerun_of,
                job.schedule,
                job.fire_time,
            ),
        )
        if not rows:
            return None
        job_id = int(rows[0]["id"])
        reason = None
        if job.schedule:
            reason = f"schedule {job.schedule}, " + (
                f"fire time {job.fire_time}" if job.fire_time is not None else "run now by hand"
            )
        transaction.execute(EVENT_SQL, (job_id, now, "submit", None, "PENDING", actor, reason, 1))
        if self.database.dialect == "postgresql":
            transaction.execute("SELECT pg_notify(?, ?)", (CHANNEL, job.queue))
        return job_id

    def get(self, job_id: int) -> Job | None:
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def find(
        self,
        status: Sequence[Status] = (),
        type: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        after: int | None = None,
        worker: str | None = None,
    ) -> list[Job]:
        """Newest first; `after` is the last id of the previous page (keyset pagination)."""
        clauses, params = _filters(status, type, queue, worker)
        if after is not None:
            clauses.append("id < ?")
            params.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ?", (*params, limit)
            )
        return [Job.from_row(row) for row in rows]

    def count_by_status(self) -> dict[Status, int]:
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {Status(row["status"]): int(row["n"]) for row in rows}

    def events(self, job_id: int) -> list[Event]:
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
            )
        return [Event.from_row(row) for row in rows]

    def move(self, move: Move, now: float) -> None:
        """Apply one guarded move with its event row, or raise MoveConflict."""
        with self.database.transaction() as transaction:
            if not apply_move(transaction, move, now):
                raise MoveConflict(_conflict_message(transaction, move))

    def move_many(self, moves: Sequence[Move], now: float) -> list[bool]:
        """Apply many guarded moves in one transaction; True for each that won."""
        if not moves:
            return []
        with self.database.transaction() as transaction:
            return apply_moves(transaction, moves, now)

    def claim(self, worker: str, queues: Sequence[str], limit: int, now: float) -> list[Job]:
        """Move up to `limit` due PENDING jobs to QUEUED for `worker`, best first."""
        if limit <= 0:
            return []
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                self.claim_sql(len(queues)), (now, *queues, limit, worker, now, now)
            )
            transaction.execute_many(
                EVENT_SQL,
                [
                    (row["id"], now, "claim", "PENDING", "QUEUED", worker, None, row["attempt"])
                    for row in rows
                ],
            )
        jobs = [Job.from_row(row) for row in rows]
        return sorted(jobs, key=lambda job: (-job.priority, job.run_at, job.id))

    def claim_sql(self, queue_count: int) -> str:
        """The one claim statement; parameters: now, the queues, limit, worker, now, now.

        The ids are picked once (a materialised CTE, never re-run by the planner) and the UPDATE
        checks the status again, so no plan can claim a row twice or beyond the limit. The pick
        reads the partial claim index in its order: SQLite is told to, since without statistics
        it would sort every PENDING row instead.
        """
        sqlite = self.database.dialect == "sqlite"
        hint, lock = (" INDEXED BY jobs_claim", "") if sqlite else ("", " FOR UPDATE SKIP LOCKED")
        queue_clause = (
            f" AND queue IN ({self.database.placeholders(queue_count)})" if queue_count else ""
        )
        pick = (
            f"SELECT id FROM jobs{hint} WHERE status = 'PENDING' AND run_at <= ?{queue_clause}"
            f" ORDER BY priority DESC, run_at, id LIMIT ?{lock}"
        )
        return (
            f"WITH picked AS MATERIALIZED ({pick})"
            " UPDATE jobs SET status = 'QUEUED', worker = ?, queued_at = ?, heartbeat = ?"
            " WHERE id IN (SELECT id FROM picked) AND status = 'PENDING' RETURNING *"
        )

    def owned(self, worker: str, status: Sequence[Status]) -> list[Job]:
        """The jobs `worker` holds in the given statuses."""
        clauses, params = _filters(status, None, None, worker)
        with self.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id", params
            )
        return [Job.from_row(row) for row in rows]


def apply_move(transaction: Transaction, move: Move, now: float) -> bool:
    """The guarded UPDATE plus its event row; False (and nothing written) if the guard failed."""
    return apply_moves(transaction, [move], now)[0]


def apply_moves(transaction: Transaction, moves: Sequence[Move], now: float) -> list[bool]:
    """Each move's guarded UPDATE and, only if it won, its event row; True for each that won.

    On PostgreSQL each move is one statement (the event is inserted from the UPDATE's
    RETURNING) and the whole batch goes in one round trip; SQLite runs them in turn.
    """
    updates = [_guarded_update(move) for move in moves]
    events = [
        (now, m.verb, m.source.value, m.target.value, m.actor, m.reason, m.attempt) for m in moves
    ]
    if transaction.dialect == "postgresql":
        statements = [
            (
                f"WITH moved AS ({sql}) INSERT INTO job_events (job_id, at, verb, from_status,"
                " to_status, actor, reason, attempt) SELECT id, ?, ?, ?, ?, ?, ?, ? FROM moved"
                " RETURNING job_id",
                [*params, *event],
            )
            for (sql, params), event in zip(updates, events, strict=True)
        ]
        return [bool(rows) for rows in transaction.execute_batch(statements)]
    won = []
    for (sql, params), move, event in zip(updates, moves, events, strict=True):
        moved = bool(transaction.execute(sql, params))
        if moved:
            transaction.execute(EVENT_SQL, (move.job_id, *event))
        won.append(moved)
    return won


def _guarded_update(move: Move) -> tuple[str, list[Any]]:
    assignments = ", ".join(["status = ?"] + [f"{column} = ?" for column in move.changes])
    params: list[Any] = [move.target.value, *move.changes.values()]
    guard = "id = ? AND status = ? AND attempt = ?"
    params += [move.job_id, move.source.value, move.attempt]
    if move.worker is not None:
        guard += " AND worker = ?"
        params.append(move.worker)
    return f"UPDATE jobs SET {assignments} WHERE {guard} RETURNING id", params


def _conflict_message(transaction: Transaction, move: Move) -> str:
    rows = transaction.execute(
        "SELECT status, attempt, worker FROM jobs WHERE id = ?", (move.job_id,)
    )
    if not rows:
        return f"job {move.job_id} does not exist"
    row = rows[0]
    return (
        f"{move.verb} of job {move.job_id} lost a race: expected {move.source} attempt "
        f"{move.attempt}{f' on {move.worker}' if move.worker else ''}, found {row['status']} "
        f"attempt {row['attempt']}{' on ' + row['worker'] if row['worker'] else ''}"
    )


def _filters(
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
