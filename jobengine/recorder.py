"""Decides the move that records each finished attempt and writes them in batches."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobengine.errors import DatabaseUnavailable
from jobengine.joblog import LogWriter, clean_text
from jobengine.model import Job, Status
from jobengine.runner import Outcome
from jobengine.store import Move, Store
from jobengine.store.jobs import EVENT_SQL, apply_moves

log = logging.getLogger("jobengine.worker")
MAX_RETRY_DELAY = 3600.0
MAX_BACKOFF = 5.0
LOG_INTERVAL = 0.2  # the longest a running job's log line waits to be written


def retry_delay(attempt: int, base: float = 1.0) -> float:
    """Exponential backoff with jitter: about base * 2^attempt seconds, at most an hour."""
    return float(min(MAX_RETRY_DELAY, base * 2**attempt) * random.uniform(0.5, 1.5))


def may_retry(job: Job) -> bool:
    return job.attempt < job.max_attempts


@dataclass
class Record:
    """One attempt's end: the moves to try in order (the first whose guard holds wins)."""

    job: Job
    moves: list[Move]
    on_done: Callable[[Move | None], None] = field(default=lambda move: None)


def decide(
    job: Job,
    outcome: Outcome,
    stop_kind: str | None,
    actor: str,
    now: float,
) -> list[Move]:
    """The moves that record `outcome`, for the job being RUNNING or TO_CANCEL."""
    return [
        _decide(job, source, outcome, stop_kind, actor, now)
        for source in (Status.RUNNING, Status.TO_CANCEL)
    ]


def _decide(
    job: Job,
    source: Status,
    outcome: Outcome,
    stop_kind: str | None,
    actor: str,
    now: float,
) -> Move:
    ended: dict[str, Any] = {
        "finished_at": now,
        "output": outcome.output,
        "errors": outcome.errors,
        "result": outcome.result_json,
    }
    guard: dict[str, Any] = {
        "job_id": job.id,
        "attempt": job.attempt,
        "source": source,
        "actor": actor,
        "worker": actor,
    }
    reason = outcome.errors.splitlines()[0] if outcome.errors else None
    if not outcome.stopped:
        if outcome.failed and source is Status.RUNNING and may_retry(job):
            return _retry(guard, job, now, f"attempt {job.attempt} failed: {reason}")
        note = "finished before the cancel took effect" if source is Status.TO_CANCEL else None
        return Move(
            **guard, target=outcome.status, verb="finish", reason=note or reason, changes=ended
        )
    if source is Status.TO_CANCEL and stop_kind in ("cancel", "shutdown", None):
        return Move(**guard, target=Status.CANCELED, verb="cancel", reason=reason, changes=ended)
    if source is Status.RUNNING and may_retry(job) and stop_kind != "cancel":
        return _retry(guard, job, now, reason or "stopped")
    return Move(**guard, target=Status.FAILURE, verb="reap", reason=reason, changes=ended)


def retry_changes(attempt: int, now: float) -> tuple[dict[str, Any], float]:
    """What a retry writes: the next attempt, back in the queue after a backoff; and the delay."""
    delay = retry_delay(attempt)
    changes = {
        "attempt": attempt + 1,
        "run_at": now + delay,
        "worker": None,
        "started_at": None,
        "queued_at": None,
    }
    return changes, delay


def _retry(guard: dict[str, Any], job: Job, now: float, reason: str) -> Move:
    changes, delay = retry_changes(job.attempt, now)
    return Move(
        **guard,
        target=Status.PENDING,
        verb="retry",
        reason=f"{reason}; retry {job.attempt + 1} of {job.max_attempts} in {delay:.1f} s",
        changes=changes,
    )


def note(
    store: Store, job: Job, status: Status, verb: str, actor: str, reason: str, now: float
) -> None:
    """An event row that records a step without a move (e.g. a cancel ladder step)."""
    with store.database.transaction() as transaction:
        transaction.execute(
            EVENT_SQL, (job.id, now, verb, status.value, status.value, actor, reason, job.attempt)
        )


def save_progress(store: Store, job: Job, fraction: float) -> None:
    """Store a running job's progress (not a move: the status does not change).

    Called from the job's own thread: a database outage must not fail the job, so it only
    costs this one progress value (the job's log still has the progress line).
    """
    try:
        with store.database.transaction() as transaction:
            transaction.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND attempt = ?"
                " AND status IN ('RUNNING', 'TO_CANCEL')",
                (fraction, job.id, job.attempt),
            )
    except DatabaseUnavailable as error:
        log.warning("job %s: progress not saved (%s)", job.id, error)


def unstorable(move: Move, error: Exception, now: float) -> Move:
    """The last resort for an outcome the database refuses: FAILURE saying why."""
    text = f"the outcome could not be stored ({type(error).__name__}: {error})"
    return Move(
        job_id=move.job_id,
        attempt=move.attempt,
        source=move.source,
        target=Status.FAILURE,
        verb="finish",
        actor=move.actor,
        reason=text.splitlines()[0][:500],
        changes={"finished_at": now, "errors": clean_text(text)},
        worker=move.worker,
    )


class Recorder:
    """Gathers finished attempts and writes them (logs first) in one transaction per batch."""

    def __init__(self, store: Store, logs: LogWriter, clock: Callable[[], float]) -> None:
        self.store, self.logs, self.clock = store, logs, clock
        self.pending: list[Record] = []
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.has_work = threading.Event()

    def add(self, record: Record) -> None:
        with self.lock:
            self.pending.append(record)
        self.has_work.set()

    def flush(self) -> int:
        """Write logs, then every pending record; raise DatabaseUnavailable and keep them."""
        with self.flush_lock:
            with self.lock:
                records, self.pending = self.pending, []
                self.has_work.clear()
            try:
                self.logs.flush()
                won = self._write(records)
            except DatabaseUnavailable:
                with self.lock:
                    self.pending = records + self.pending
                raise
        for record, move in zip(records, won, strict=True):
            record.on_done(move)
        return len(records)

    def _write(self, records: list[Record]) -> list[Move | None]:
        """One transaction for the batch; if the database refuses it, one per record."""
        if not records:
            return []
        try:
            return self._write_batch(records)
        except DatabaseUnavailable:
            raise
        except Exception:
            log.exception("recording %s outcomes failed; recording them one by one", len(records))
            return [self._write_alone(record) for record in records]

    def _write_alone(self, record: Record) -> Move | None:
        try:
            return self._write_batch([record])[0]
        except DatabaseUnavailable:
            raise
        except Exception as error:
            log.exception("job %s: its outcome was refused; recording FAILURE", record.job.id)
            now = self.clock()
            fallback = [unstorable(move, error, now) for move in record.moves]
            return self._write_batch([Record(record.job, fallback)])[0]

    def _write_batch(self, records: list[Record]) -> list[Move | None]:
        now = self.clock()
        won: list[Move | None] = [None] * len(records)
        waiting = list(range(len(records)))
        with self.store.database.transaction() as transaction:
            for turn in range(max(len(record.moves) for record in records)):
                tries = [
                    (i, records[i].moves[turn]) for i in waiting if turn < len(records[i].moves)
                ]
                results = apply_moves(transaction, [move for _, move in tries], now)
                for (index, move), ok in zip(tries, results, strict=True):
                    won[index] = move if ok else None
                waiting = [index for (index, _), ok in zip(tries, results, strict=True) if not ok]
        return won

    def run(self, done: threading.Event) -> None:
        """Flush as outcomes arrive until `done`; a database outage only delays them."""
        backoff = 0.1
        while not done.is_set():
            if self.has_work.wait(LOG_INTERVAL):
                time.sleep(0.002)  # gather what finishes at the same moment into one batch
            elif not self.logs.buffered:
                continue  # nothing finished: still write running jobs' lines, for `log --follow`
            try:
                self.flush()
                backoff = 0.1
            except Exception as error:
                log.warning("cannot record outcomes (%s); again in %.1f s", error, backoff)
                time.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def flush_until(self, deadline: float) -> bool:
        """Flush, retrying through an outage until the monotonic `deadline`."""
        while time.monotonic() < deadline:
            try:
                self.flush()
                return True
            except DatabaseUnavailable:
                time.sleep(0.2)
        log.error("outcomes could not be recorded; the reaper will deal with their jobs")
        return False
