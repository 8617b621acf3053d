"""The workers table: who is alive, what each serves, and requests sent to them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jobengine.model import Move
from jobengine.store.database import Database, Transaction
from jobengine.store.moves import apply_moves

RUNNING, DRAINING, STOPPED, DEAD = "running", "draining", "stopped", "dead"
LIVE = (RUNNING, DRAINING)
ALIVE = "alive"  # how `jobengine workers` shows a running worker that beats
ACTIVE_SQL = "('QUEUED', 'RUNNING', 'TO_CANCEL')"
HELD_COLUMNS = "id, attempt, status, worker, type, max_attempts, heartbeat"
# The columns a worker's row starts with; stopped_at, request and clock_skew are written later.
REGISTER_COLUMNS = (
    "id, host, pid, started_at, heartbeat, queues, concurrency, version, state, types, boot_id,"
    " start_ticks, pid_namespace"
)


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
    types: list[str] = field(default_factory=list)  # the job types it serves
    # What identifies its process for sure, whatever the clock or the host name does: the boot
    # of the kernel, the process's start in clock ticks since that boot, its pid namespace.
    boot_id: str | None = None
    start_ticks: int | None = None
    pid_namespace: str | None = None
    clock_skew: float | None = None  # its host's wall clock minus the shared clock, at its beat

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerRecord:
        values = dict(row)
        values["queues"] = json.loads(row["queues"])
        values["types"] = json.loads(row.get("types") or "[]")
        return cls(**values)


class WorkerStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def register(self, record: WorkerRecord) -> None:
        row = asdict(record)
        row["queues"], row["types"] = json.dumps(record.queues), json.dumps(record.types)
        names = REGISTER_COLUMNS.split(", ")
        self.database.write(
            f"INSERT INTO workers ({REGISTER_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
            [row[name] for name in names],
        )

    def beat(self, worker: str, now: float, state: str, clock_skew: float | None = None) -> Beat:
        """Record a heartbeat for the worker and its active jobs; return a pending request
        and the active jobs the database says it holds (rows as `reap` plans them)."""
        with self.database.transaction() as transaction:
            rows = transaction.execute(
                "UPDATE workers SET heartbeat = ?, state = ?, clock_skew = ? WHERE id = ?"
                " RETURNING request",
                (now, state, clock_skew, worker),
            )
            jobs = transaction.execute(
                f"UPDATE jobs SET heartbeat = ? WHERE worker = ? AND status IN {ACTIVE_SQL}"
                f" RETURNING {HELD_COLUMNS}",
                (now, worker),
            )
        return Beat(rows[0]["request"] if rows else None, jobs)

    def stop(self, worker: str, now: float) -> None:
        self.database.write(
            "UPDATE workers SET state = ?, stopped_at = ?, heartbeat = ? WHERE id = ?",
            (STOPPED, now, now, worker),
        )

    def request(self, request: str, workers: Sequence[str] = ()) -> int:
        """Ask running workers (all, or those named) to act on `request`, e.g. 'restart'."""
        clause = f" AND id IN ({', '.join('?' * len(workers))})" if workers else ""
        rows = self.database.write(
            f"UPDATE workers SET request = ? WHERE state != ?{clause} RETURNING id",
            (request, STOPPED, *workers),
        )
        return len(rows)

    def clear_request(self, worker: str) -> None:
        self.database.write("UPDATE workers SET request = NULL WHERE id = ?", (worker,))

    def find(self, include_stopped: bool = False) -> list[WorkerRecord]:
        where = "" if include_stopped else f" WHERE state != '{STOPPED}'"
        rows = self.database.read(f"SELECT * FROM workers{where} ORDER BY started_at")
        return [WorkerRecord.from_row(row) for row in rows]

    def on_host(self, host: str) -> list[WorkerRecord]:
        """Workers of `host` that claim to be alive."""
        select = "SELECT * FROM workers WHERE host = ? AND state IN (?, ?)"
        rows = self.database.read(select, (host, *LIVE))
        return [WorkerRecord.from_row(row) for row in rows]

    def to_reap(self, cutoff: float) -> list[str]:
        """Ids of workers to reap: alive but silent since `cutoff`, or ended with jobs held.

        Also the ids named by active jobs that no registered worker has, once those jobs have
        had no heartbeat since `cutoff` (a worker that claimed without registering, or a row
        deleted by hand).
        """
        rows = self.database.read(
            "SELECT id FROM workers WHERE state IN (?, ?) AND heartbeat < ?"
            " UNION SELECT DISTINCT j.worker AS id FROM jobs j"
            " LEFT JOIN workers w ON w.id = j.worker"
            f" WHERE j.status IN {ACTIVE_SQL} AND j.worker IS NOT NULL"
            " AND ((w.id IS NULL AND (j.heartbeat IS NULL OR j.heartbeat < ?))"
            " OR (w.id IS NOT NULL AND w.state NOT IN (?, ?)))",
            (*LIVE, cutoff, cutoff, *LIVE),
        )
        return sorted(str(row["id"]) for row in rows)

    def reap(self, worker: str, now: float, cutoff: float, known_dead: bool, plan: Plan) -> Reaped:
        """Declare `worker` dead and move the jobs it holds, in one transaction holding its row.

        Nothing happens if it beat since `cutoff` and its death is not `known_dead`. A
        heartbeat waits for the row lock, so a worker cannot beat between this decision and
        the moves that take its jobs. `plan` turns the worker's row (None if it has none) and
        the jobs it holds into the guarded moves to try.
        """
        select = f"SELECT * FROM workers WHERE id = ?{self.database.row_lock}"
        with self.database.transaction() as transaction:
            rows = transaction.execute(select, (worker,))
            record = WorkerRecord.from_row(rows[0]) if rows else None
            declared = record is not None and record.state in LIVE
            if declared and not known_dead and record is not None and record.heartbeat >= cutoff:
                return Reaped(record, False, [])  # it beat after it was found silent: alive
            if declared:
                transaction.execute(
                    "UPDATE workers SET state = ?, stopped_at = ? WHERE id = ?", (DEAD, now, worker)
                )
            held = _held_jobs(transaction, worker, cutoff if record is None else None)
            moves = plan(record, held)
            won = apply_moves(transaction, moves, now) if moves else []
        return Reaped(record, declared, [move for move, ok in zip(moves, won, strict=True) if ok])

    def overview(
        self, now: float, dead_after: float, include_stopped: bool = False
    ) -> list[WorkerOverview]:
        """Every worker with its running jobs and its state as an operator means it.

        alive (beating), draining (finishing its jobs before it stops), dead (declared dead, or
        silent for longer than `dead_after` and not reaped yet), stopped (exited cleanly).
        """
        where = "" if include_stopped else f" WHERE w.state != '{STOPPED}'"
        rows = self.database.read(
            "SELECT w.*, (SELECT COUNT(*) FROM jobs j WHERE j.worker = w.id"
            f" AND j.status IN {ACTIVE_SQL}) AS running_jobs"
            f" FROM workers w{where} ORDER BY w.started_at, w.id"
        )
        return [_overview(row, now, dead_after) for row in rows]


def _held_jobs(
    transaction: Transaction, worker: str, silent_since: float | None
) -> list[dict[str, Any]]:
    """The active jobs `worker` holds, oldest first; with `silent_since`, only those whose own
    heartbeat is older."""
    silence = " AND (heartbeat IS NULL OR heartbeat < ?)" if silent_since is not None else ""
    params = (worker,) if silent_since is None else (worker, silent_since)
    return transaction.execute(
        f"SELECT {HELD_COLUMNS} FROM jobs"
        f" WHERE worker = ? AND status IN {ACTIVE_SQL}{silence} ORDER BY id",
        params,
    )


@dataclass(frozen=True)
class Reaped:
    """What one reap did: the worker's row as found, whether it was declared dead now, and
    the moves that won."""

    record: WorkerRecord | None
    declared: bool
    moves: list[Move]


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt: a request for the worker, and the active jobs the database
    gives it."""

    request: str | None
    jobs: list[dict[str, Any]]


Plan = Callable[[WorkerRecord | None, list[dict[str, Any]]], list[Move]]


@dataclass(frozen=True)
class WorkerOverview:
    """One line of `jobengine workers`."""

    record: WorkerRecord
    running_jobs: int
    state: str
    age: float
    heartbeat_age: float


def _overview(row: dict[str, Any], now: float, dead_after: float) -> WorkerOverview:
    """A row of `overview`'s query as `jobengine workers` shows it."""
    running_jobs = int(row.pop("running_jobs"))
    record = WorkerRecord.from_row(row)
    silent = record.state in LIVE and now - record.heartbeat > dead_after
    state = DEAD if silent else {RUNNING: ALIVE}.get(record.state, record.state)
    age, heartbeat_age = round(now - record.started_at, 1), round(now - record.heartbeat, 1)
    return WorkerOverview(record, running_jobs, state, age, heartbeat_age)
