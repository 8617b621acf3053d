"""A guarded move written: its UPDATE, its event row, and the first of a job's choices that wins."""

from __future__ import annotations

from collections.abc import Sequence

from jobengine.model import Job, Move, Status
from jobengine.store.database import Change, Transaction

EVENT_FIELDS = ("job_id", "at", "verb", "from_status", "to_status", "actor", "reason", "attempt")
EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
EVENT_INSERT = f"INSERT INTO job_events ({EVENT_COLUMNS})"


def apply_first_moves(
    transaction: Transaction, choices: Sequence[Sequence[Move]], now: float
) -> list[Move | None]:
    """For each job, the first of its moves whose guard holds (None: none did)."""
    won: list[Move | None] = [None] * len(choices)
    waiting = list(range(len(choices)))
    for turn in range(max((len(moves) for moves in choices), default=0)):
        tries = [(i, choices[i][turn]) for i in waiting if turn < len(choices[i])]
        results = apply_moves(transaction, [move for _, move in tries], now)
        for (index, move), ok in zip(tries, results, strict=True):
            won[index] = move if ok else None
        waiting = [index for (index, _), ok in zip(tries, results, strict=True) if not ok]
    return won


def apply_move(transaction: Transaction, move: Move, now: float) -> bool:
    """The guarded UPDATE plus its event row; False (and nothing written) if the guard failed."""
    return apply_moves(transaction, [move], now)[0]


def start_move(job: Job, worker: str, now: float) -> Move:
    """QUEUED -> RUNNING on `worker`."""
    return Move(
        job.id,
        job.attempt,
        Status.QUEUED,
        Status.RUNNING,
        "start",
        worker,
        changes={"started_at": now},
        worker=worker,
    )


def apply_moves(transaction: Transaction, moves: Sequence[Move], now: float) -> list[bool]:
    """Each move's guarded UPDATE and, only if it won, its event row; True for each that won."""
    return transaction.update_then_insert(
        "jobs", changes_of(moves, now), "job_events", EVENT_FIELDS
    )


def changes_of(moves: Sequence[Move], now: float) -> list[Change]:
    """The guarded row changes that make `moves`, each with its event row's values."""
    return [
        Change(
            {"status": m.target.value, **m.changes},
            {"id": m.job_id, "status": m.source.value, "attempt": m.attempt}
            | ({"worker": m.worker} if m.worker is not None else {}),
            (now, m.verb, m.source.value, m.target.value, m.actor, m.reason, m.attempt),
        )
        for m in moves
    ]
