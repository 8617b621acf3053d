"""The jobs table and its audit trail: insert, read, claim and every guarded move."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobengine.errors import JobNotFound, MoveConflict
from jobengine.model import (
    NEEDED_NUMBERS,
    NEW_JOB_COLUMNS,
    Event,
    Job,
    Move,
    NewJob,
    Status,
    mistyped,
)
from jobengine.store.database import Database, Row, Statement, Transaction
from jobengine.store.listing import job_filters
from jobengine.store.moves import (
    EVENT_FIELDS,
    EVENT_INSERT,
    apply_first_moves,
    apply_move,
    apply_moves,
    changes_of,
)

log = logging.getLogger("jobengine.store")
CHANNEL = "jobengine"
CANCEL_NOTICE = "cancel"  # the payload that tells workers to look for cancel requests
# The event rows of a claim, written by the claim's own statement from the claimed rows.
CLAIM_EVENTS, CLAIM_EVENT = (
    f"{EVENT_INSERT} SELECT moved.id, ?, moves.column2, moves.column3, moves.column4, ?, NULL,"
    f" moved.attempt FROM moved CROSS JOIN (VALUES {moves}) AS moves"
    " ORDER BY moved.id, moves.column1"
    for moves in (
        "(1, 'claim', 'PENDING', 'QUEUED'), (2, 'start', 'QUEUED', 'RUNNING')",
        "(1, 'claim', 'PENDING', 'QUEUED')",
    )
)
INSERT_HEAD = f"INSERT INTO jobs ({', '.join(NEW_JOB_COLUMNS)}, status, created_at, attempt)"
INSERT_ROW = f"({', '.join('?' * len(NEW_JOB_COLUMNS))}, 'PENDING', ?, 1)"
INSERT_SQL = f"{INSERT_HEAD} VALUES {INSERT_ROW}"
SHARED_COLUMNS = tuple(column for column in NEW_JOB_COLUMNS if column != "args")
SHARED_FIELDS = (*SHARED_COLUMNS, "status", "created_at", "attempt")  # all a batch shares
ARGUMENTS_BROKEN = "arguments are not valid JSON"
ROW_BROKEN = "the job's row is not one jobengine wrote"
CLAIMED_NUMBERS = (*NEEDED_NUMBERS, "timeout")  # what a worker computes with as it runs a job

__all__ = ["CANCEL_NOTICE", "CHANNEL", "Claim", "JobStore", "Move", "NewJob"]


@dataclass(frozen=True)
class Claim:
    """A worker's request for due jobs: up to `limit`, of `types` in `queues` (any if none)."""

    worker: str
    queues: Sequence[str]
    limit: int
    types: Sequence[str] = ()


class JobStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def insert(self, transaction: Transaction, job: NewJob, now: float, actor: str) -> int | None:
        """Insert a PENDING job with its submit event; None if its (schedule, fire time) exists.

        Workers are woken once the transaction commits (PostgreSQL: NOTIFY).
        """
        if job.parent is not None and not transaction.execute(
            "SELECT 1 FROM jobs WHERE id = ?", (job.parent,)
        ):
            raise JobNotFound(f"no job has id {job.parent}; a parent must be an existing job")
        rows = transaction.execute(*_insert_statement(job, now))
        if not rows:
            return None
        job_id = int(rows[0]["id"])
        transaction.insert_rows(
            "job_events", EVENT_FIELDS, [(job_id, *_submit_event(job, now, actor))]
        )
        self.database.notify_on_commit(transaction, CHANNEL, job.queue)
        return job_id

    def insert_alone(self, job: NewJob, now: float, actor: str) -> int | None:
        """`insert` in a transaction of its own (one statement on PostgreSQL), for a job with
        no parent to check."""
        rows = self.database.write_then_insert(
            _insert_statement(job, now),
            "job_events",
            EVENT_FIELDS,
            _submit_event(job, now, actor),
            (CHANNEL, job.queue),
        )
        return int(rows[0]["id"]) if rows else None

    def insert_many(
        self, transaction: Transaction, jobs: Sequence[NewJob], now: float, actor: str
    ) -> list[int | None]:
        """Insert jobs as `insert` does; several without a schedule go in one statement per
        set of jobs alike but for their arguments (one for a `submit_many`), with their submit
        events in one more."""
        if len(jobs) == 1 or any(job.schedule for job in jobs):
            return [self.insert(transaction, job, now, actor) for job in jobs]
        for parent in {job.parent for job in jobs if job.parent is not None}:
            if not transaction.execute("SELECT 1 FROM jobs WHERE id = ?", (parent,)):
                raise JobNotFound(f"no job has id {parent}; a parent must be an existing job")
        alike: dict[tuple[Any, ...], list[int]] = {}
        for index, job in enumerate(jobs):
            alike.setdefault(shared_of(job), []).append(index)
        ids: list[int | None] = [None] * len(jobs)
        inserted: list[int] = []
        for shared, indexes in alike.items():
            arguments = [jobs[index].args for index in indexes]
            rows = transaction.insert_each(
                "jobs", SHARED_FIELDS, (*shared, "PENDING", now, 1), "args", arguments, "id"
            )
            assigned = sorted(int(row["id"]) for row in rows)  # in the order of the rows
            inserted += assigned
            for index, job_id in zip(indexes, assigned, strict=True):
                ids[index] = job_id
        event = (now, "submit", None, "PENDING", actor, None, 1)
        transaction.insert_each("job_events", EVENT_FIELDS[1:], event, "job_id", sorted(inserted))
        for queue in {job.queue for job in jobs}:
            self.database.notify_on_commit(transaction, CHANNEL, queue)
        return ids

    def get(self, job_id: int) -> Job | None:
        rows = self.database.read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_stored_row(rows[0]) if rows else None

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
        clauses, params = job_filters(status, type, queue, worker)
        if after is not None:
            clauses.append("id < ?")
            params.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.database.read(
            f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [Job.from_stored_row(row) for row in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self.database.read("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {Status(row["status"]): int(row["n"]) for row in rows}

    def events(self, job_id: int) -> list[Event]:
        rows = self.database.read(
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

    def move_first(self, choices: Sequence[Sequence[Move]], now: float) -> list[Move | None]:
        """For each job, the first of its moves whose guard holds.

        A finished attempt is recorded by trying RUNNING -> outcome, then TO_CANCEL -> outcome:
        one of them wins unless the job was taken from its worker (None). The jobs are
        independent: each statement may commit alone (a job's move and event row together).
        """
        with self.database.transaction(atomic=False) as transaction:
            return apply_first_moves(transaction, choices, now)

    def note(
        self, job: Job, status: Status, verb: str, actor: str, reason: str, now: float
    ) -> bool:
        """An event row that records a step without a move (e.g. a cancel ladder step).

        Written only while the job is still in `status` at its attempt, so no note ever lands
        after the job's terminal move.
        """
        if status.terminal:
            return False
        rows = self.database.write(
            f"{EVENT_INSERT} SELECT id, ?, ?, status, status, ?, ?, attempt FROM jobs"
            " WHERE id = ? AND status = ? AND attempt = ? RETURNING id",
            (now, verb, actor, reason, job.id, status.value, job.attempt),
        )
        return bool(rows)

    def run_now(self, job: Job, actor: str, now: float) -> bool:
        """Make a PENDING job that is due later due now (not a move: the status stays), with a
        "run_now" event row; False if it was no longer PENDING at its attempt and due later."""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                "UPDATE jobs SET run_at = ? WHERE id = ? AND status = 'PENDING' AND attempt = ?"
                " AND run_at > ? RETURNING id",
                (now, job.id, job.attempt, now),
            )
            if rows:
                event = (job.id, now, "run_now", "PENDING", "PENDING", actor, "run now by hand")
                transaction.insert_rows("job_events", EVENT_FIELDS, [(*event, job.attempt)])
        return bool(rows)

    def save_progress(self, job: Job, fraction: float) -> None:
        """Store a running job's progress (not a move: the status does not change)."""
        self.database.write(
            "UPDATE jobs SET progress = ? WHERE id = ? AND attempt = ?"
            " AND status IN ('RUNNING', 'TO_CANCEL')",
            (fraction, job.id, job.attempt),
        )

    def claim(
        self,
        worker: str,
        queues: Sequence[str],
        limit: int,
        now: float,
        types: Sequence[str] = (),
        start: bool = False,
    ) -> list[Job]:
        """Move up to `limit` due PENDING jobs (of `types`, if given) to QUEUED for `worker`,
        best first; with `start`, on to RUNNING too: both moves and their event rows in one
        statement that commits alone. A claimed row whose arguments cannot be read ends FAILURE
        right after (were that refused, the worker's heartbeat recovers a job it does not run).
        """
        if limit <= 0:
            return []
        statements = self._claim_sql(Claim(worker, queues, limit, types), now, start)
        with self.database.claim_transaction() as transaction:
            rows = transaction.update_then_note("jobs", *statements)
        return self._started(rows, worker, now, start)

    def record_then_claim(
        self, choices: Sequence[Sequence[Move]], now: float, claim: Claim
    ) -> tuple[list[Move | None], list[Job]]:
        """`move_first`, then `claim` with start: each job's first move and the claim commit
        together (one turn of SQLite's write lock, one round trip on PostgreSQL); the moves
        that lost try their next choice after, as in `move_first`."""
        first = [moves[0] for moves in choices]
        changes, claiming = changes_of(first, now), self._claim_sql(claim, now)  # before the lock
        with self.database.claim_transaction() as transaction:
            won, rows = transaction.update_then_claim(
                changes, "job_events", EVENT_FIELDS, *claiming
            )
            lost = [index for index, ok in enumerate(won) if not ok]
            later = apply_first_moves(transaction, [choices[index][1:] for index in lost], now)
        jobs = self._started(rows, claim.worker, now, start=True)
        moves: list[Move | None] = list(first)
        for index, move in zip(lost, later, strict=True):
            moves[index] = move
        return moves, jobs

    def _claim_sql(
        self, claim: Claim, now: float, start: bool = True
    ) -> tuple[Statement, Statement]:
        """The claim's statement and its event rows' statement."""
        worker = claim.worker
        statement = (
            self.claim_sql(len(claim.queues), len(claim.types), start),
            (now, *claim.queues, *claim.types, claim.limit, worker, now, now)
            + ((now,) if start else ()),
        )
        noted = (CLAIM_EVENTS if start else CLAIM_EVENT, (now, worker))
        return statement, noted

    def _started(self, rows: list[Row], worker: str, now: float, start: bool) -> list[Job]:
        """The claimed rows as jobs, best first, read once the claim has committed (nothing
        decoded inside SQLite's write lock); rows no worker can read are failed right after."""
        jobs, broken = _decode(rows)
        jobs.sort(key=lambda job: (-job.priority, job.run_at, job.id))
        if not broken:
            return jobs
        unreadable = [_unreadable(row, errors, worker, now) for row, errors in broken]
        try:
            with self.database.transaction() as transaction:
                if not start:  # still QUEUED: start it, to fail it
                    apply_moves(transaction, [begin for begin, _ in unreadable], now)
                apply_moves(transaction, [fail for _, fail in unreadable], now)
        except Exception as error:  # the worker's next heartbeat recovers what it holds
            ids = [row["id"] for row, _ in broken]
            log.warning("jobs %s cannot be read and could not be failed yet: %s", ids, error)
        return jobs

    def claim_sql(self, queue_count: int, type_count: int = 0, start: bool = False) -> str:
        """The one claim statement; parameters: now, the queues, the types, limit, worker, now,
        now (and now again with `start`, which claims and starts at once).

        The rows are picked once (a materialised CTE, never re-run by the planner), so no plan
        can claim a row twice or beyond the limit. The pick reads the partial claim index in its
        order; the UPDATE finds the picked rows as the backend's `claim_match` says: by id and
        the picked status, checked again (SQLite, whose writers take turns), or by the address
        of each row the pick has locked (PostgreSQL), whatever a planner believes of the table.
        """
        pick = pick_sql(self.database, queue_count, type_count)
        status = "'RUNNING'" if start else "'QUEUED'"
        started = ", started_at = ?" if start else ""
        return (
            f"WITH picked AS MATERIALIZED ({pick})"
            f" UPDATE jobs SET status = {status}, worker = ?, queued_at = ?, heartbeat = ?{started}"
            f" WHERE {self.database.claim_match} RETURNING *"
        )

    def owned(self, worker: str, status: Sequence[Status]) -> list[Job]:
        """The jobs `worker` holds in the given statuses."""
        clauses, params = job_filters(status, None, None, worker)
        rows = self.database.read(
            f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id", params
        )
        return [Job.from_stored_row(row) for row in rows]


def pick_sql(database: Database, queue_count: int, type_count: int, lock: bool = True) -> str:
    """The claim's pick of due PENDING jobs, best first; parameters: now, the queues, the
    types, limit. Without `lock`, what it reads without taking the rows (for `doctor`)."""
    marks = database.placeholders
    queue_clause = f" AND queue IN ({marks(queue_count)})" if queue_count else ""
    type_clause = f" AND type IN ({marks(type_count)})" if type_count else ""
    return (
        f"SELECT {database.claim_pick} FROM jobs{database.claim_hint} WHERE status = 'PENDING'"
        f" AND run_at <= ?{queue_clause}{type_clause} ORDER BY priority DESC, run_at, id"
        f" LIMIT ?{database.row_lock_skipping if lock else ''}"
    )


astuple_of: Callable[[NewJob], tuple[Any, ...]] = operator.attrgetter(*NEW_JOB_COLUMNS)
"""A new job's values in the order of its columns."""
shared_of: Callable[[NewJob], tuple[Any, ...]] = operator.attrgetter(*SHARED_COLUMNS)
"""A new job's values but its arguments: what the jobs of one `insert_each` share."""


def _decode(rows: list[dict[str, Any]]) -> tuple[list[Job], list[tuple[Row, str]]]:
    """The claimed rows as jobs, and the rows that cannot be read as one with the reason."""
    jobs, broken = [], []
    for row in rows:
        try:
            job = Job.from_row(row)
        except (ValueError, TypeError):  # json.JSONDecodeError is a ValueError
            broken.append((row, f"{ARGUMENTS_BROKEN}: {str(row.get('args'))[:200]!r}"))
            continue
        wrong = mistyped(row, CLAIMED_NUMBERS)
        if wrong:  # a row another program wrote
            broken.append((row, f"{ROW_BROKEN}: its {wrong} {row[wrong]!r} is no number"))
        else:
            jobs.append(job)
    return jobs, broken


def _unreadable(row: dict[str, Any], errors: str, worker: str, now: float) -> tuple[Move, Move]:
    """A claimed row no worker can read is started and failed at once, saying why."""
    guard = {"job_id": row["id"], "attempt": row["attempt"], "actor": worker, "worker": worker}
    start = Move(
        **guard,
        source=Status.QUEUED,
        target=Status.RUNNING,
        verb="start",
        changes={"started_at": now},
    )
    fail = Move(
        **guard,
        source=Status.RUNNING,
        target=Status.FAILURE,
        verb="reap",
        reason=errors.split(":", 1)[0],
        changes={"finished_at": now, "errors": errors},
    )
    return start, fail


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


def _insert_statement(job: NewJob, now: float) -> tuple[str, list[Any]]:
    """The INSERT ... RETURNING id of a new job; a schedule's fire time is inserted once."""
    conflict = ""
    if job.schedule:  # the unique index holds only the jobs of a schedule (migration 5)
        conflict = " ON CONFLICT (schedule, fire_time) WHERE schedule IS NOT NULL DO NOTHING"
    return f"{INSERT_SQL}{conflict} RETURNING id", [*astuple_of(job), now]


def _submit_event(job: NewJob, now: float, actor: str) -> tuple[Any, ...]:
    """The submit event's values after the job's id."""
    reason = None
    if job.schedule:
        fire = f"fire time {job.fire_time}" if job.fire_time is not None else "run now by hand"
        reason = f"schedule {job.schedule}, {fire}"
    return (now, "submit", None, "PENDING", actor, reason, 1)
