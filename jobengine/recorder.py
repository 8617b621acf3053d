"""Decides the move that records each finished attempt and writes them in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol, overload

from jobengine.context import StopKind
from jobengine.errors import DatabaseUnavailable
from jobengine.joblog import LogWriter, clean_text
from jobengine.loglines import log_lines
from jobengine.model import Job, Move, Status
from jobengine.retry import Backoff, may_retry, retry_changes
from jobengine.runner import Outcome
from jobengine.store import Store
from jobengine.store.jobs import Claim

log = logging.getLogger("jobengine.worker")
LOG_INTERVAL = 0.2  # the longest a running job's log line waits to be written


class Choices(Sequence[Move]):
    """The moves that record an attempt's end, in the order they are tried, each made when
    first asked for: the first (from RUNNING) nearly always wins, and making a Move (its checks
    included) costs more than trying it."""

    def __init__(self, make: Callable[[Status], Move], sources: tuple[Status, ...]) -> None:
        self.make, self.sources = make, sources
        self.made: dict[Status, Move] = {}

    def __len__(self) -> int:
        return len(self.sources)

    @overload
    def __getitem__(self, index: int) -> Move: ...

    @overload
    def __getitem__(self, index: slice) -> list[Move]: ...

    def __getitem__(self, index: int | slice) -> Move | list[Move]:
        if isinstance(index, slice):
            return [self[position] for position in range(len(self))[index]]
        source = self.sources[index]
        move = self.made.get(source)
        if move is None:
            move = self.made[source] = self.make(source)
        return move


@dataclass
class Record:
    """One attempt's end: the moves to try in order (the first whose guard holds wins)."""

    job: Job
    moves: Sequence[Move]
    on_done: Callable[[Move | None], None] = field(default=lambda move: None)
    started: float | None = None  # time.monotonic() when the attempt began, for its log line


class Refill(Protocol):
    """The worker's side of its cycle: the jobs to claim in the transaction that records the
    outcomes of `leaving` jobs (None: none), and what was claimed, to launch once recorded."""

    def claim_for(self, leaving: list[int]) -> Claim | None: ...

    def claimed(self, claim: Claim, jobs: list[Job]) -> None: ...


def decide(
    job: Job,
    outcome: Outcome,
    stop_kind: StopKind | None,
    actor: str,
    now: float,
    idempotent: bool = False,
) -> Choices:
    """The moves that record `outcome`, for the job being RUNNING or TO_CANCEL, each made when
    the store first tries it."""

    def make(source: Status) -> Move:
        return _decide(job, source, outcome, stop_kind, actor, now, idempotent)

    return Choices(make, (Status.RUNNING, Status.TO_CANCEL))


def _decide(
    job: Job,
    source: Status,
    outcome: Outcome,
    stop_kind: StopKind | None,
    actor: str,
    now: float,
    idempotent: bool,
) -> Move:
    ended: dict[str, Any] = {
        "finished_at": now,
        "output": outcome.output,
        "errors": outcome.errors,
        "result": outcome.result_json,
    }
    move = partial(Move, job.id, job.attempt, source, actor=actor, worker=actor)  # the guard
    reason = outcome.errors.splitlines()[0] if outcome.errors else None
    if not outcome.stopped:
        failed = outcome.failed and source is Status.RUNNING
        if failed and may_retry(job.attempt, job.max_attempts, idempotent, lost=False):
            return _retry(move, job, now, f"attempt {job.attempt} failed: {reason}")
        note = "finished before the cancel took effect" if source is Status.TO_CANCEL else None
        return move(target=outcome.status, verb="finish", reason=note or reason, changes=ended)
    if source is Status.TO_CANCEL and stop_kind in (StopKind.CANCEL, StopKind.SHUTDOWN, None):
        return move(target=Status.CANCELED, verb="cancel", reason=reason, changes=ended)
    lost = stop_kind in (StopKind.SHUTDOWN, StopKind.RECOVERED, StopKind.FENCED)
    retried = source is Status.RUNNING and stop_kind != StopKind.CANCEL
    if retried and may_retry(job.attempt, job.max_attempts, idempotent, lost):
        return _retry(move, job, now, reason or "stopped")
    return move(target=Status.FAILURE, verb="reap", reason=reason, changes=ended)


def _retry(move: partial[Move], job: Job, now: float, reason: str) -> Move:
    changes, delay = retry_changes(job.attempt, now)
    reason = f"{reason}; retry {job.attempt + 1} of {job.max_attempts} in {delay:.1f} s"
    return move(target=Status.PENDING, verb="retry", reason=reason, changes=changes)


def unstorable(move: Move, error: Exception, now: float) -> Move:
    """The last resort for an outcome the database refuses: FAILURE saying why."""
    text = f"the outcome could not be stored ({type(error).__name__}: {error})"
    changes = {"finished_at": now, "errors": clean_text(text)}
    reason = text.splitlines()[0][:500]
    return replace(move, target=Status.FAILURE, verb="finish", reason=reason, changes=changes)


def log_outcomes(records: list[Record], won: list[Move | None]) -> None:
    """One line per recorded move ('finish job 7 RUNNING -> SUCCESS in 0.002 s'), one warning
    per outcome that came too late."""
    rows, now = [], time.monotonic()
    for record, move in zip(records, won, strict=True):
        if move is None:
            message = "job %s: outcome not recorded, the job was recovered from this worker"
            log.warning(message, record.job.id)
        elif record.started is not None:
            reason = f" ({move.reason})" if move.reason else ""
            elapsed = now - record.started
            rows.append((move.verb, record.job.id, move.source, move.target, elapsed, reason))
    log_lines(log, rows, "%s job %s %s -> %s in %.3f s%s")


class Recorder:
    """Gathers finished attempts and writes them (logs first), one statement per batch alike."""

    def __init__(self, store: Store, logs: LogWriter, clock: Callable[[], float]) -> None:
        self.store, self.logs, self.clock = store, logs, clock
        self.pending: list[Record] = []
        self.notes: list[tuple[Job, Status, str, str, str, float]] = []
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.has_work = threading.Event()
        self.refill: Refill | None = None  # set while the worker runs: it claims with outcomes

    def add(self, record: Record) -> None:
        with self.lock:
            self.pending.append(record)
        self.has_work.set()

    def note(
        self, job: Job, status: Status, verb: str, actor: str, reason: str, now: float
    ) -> None:
        """An event row that moves nothing (a ladder step), written with the next batch."""
        with self.lock:
            self.notes.append((job, status, verb, actor, reason, now))

    def flush(self) -> int:
        """Write logs, notes, then every pending record, with the claim of the jobs that take
        their place when a refill is set; raise DatabaseUnavailable and keep the records."""
        with self.flush_lock:
            with self.lock:
                records, self.pending = self.pending, []
                self.has_work.clear()
            refill = self.refill if records else None
            claim = refill.claim_for([record.job.id for record in records]) if refill else None
            try:
                self.logs.flush()
                self._write_notes()
                won, claimed = self._write(records, claim)
            except BaseException as error:
                if refill and claim:
                    refill.claimed(claim, [])
                if isinstance(error, DatabaseUnavailable):
                    self._keep(records)
                raise
        try:  # the claimed jobs first: they run while the outcomes are logged
            if refill and claim:
                refill.claimed(claim, claimed)
        finally:
            log_outcomes(records, won)
            for record, move in zip(records, won, strict=True):
                record.on_done(move)
        return len(records)

    def _keep(self, records: list[Record]) -> None:
        with self.lock:
            self.pending = records + self.pending
            if self.pending:
                self.has_work.set()  # kept records are tried again after the backoff

    def _write_notes(self) -> None:
        with self.lock:
            notes, self.notes = self.notes, []
        for number, note in enumerate(notes):
            try:
                self.store.jobs.note(*note)
            except DatabaseUnavailable:
                with self.lock:
                    self.notes = notes[number:] + self.notes
                raise

    def _write(
        self, records: list[Record], claim: Claim | None
    ) -> tuple[list[Move | None], list[Job]]:
        """One transaction for the batch (and the claim); if the database refuses it, one per
        record, claiming nothing."""
        if not records:
            return [], []
        try:
            return self._write_batch(records, claim)
        except DatabaseUnavailable:
            raise
        except Exception:
            log.exception("recording %s outcomes failed; recording them one by one", len(records))
            return [self._write_alone(record) for record in records], []

    def _write_alone(self, record: Record) -> Move | None:
        try:
            return self._write_batch([record])[0][0]
        except DatabaseUnavailable:
            raise
        except Exception as error:
            log.exception("job %s: its outcome was refused; recording FAILURE", record.job.id)
            now = self.clock()
            fallback = [unstorable(move, error, now) for move in record.moves]
            return self._write_batch([Record(record.job, fallback)])[0][0]

    def _write_batch(
        self, records: list[Record], claim: Claim | None = None
    ) -> tuple[list[Move | None], list[Job]]:
        choices, now = [record.moves for record in records], self.clock()
        if claim is None:
            return self.store.jobs.move_first(choices, now), []
        return self.store.jobs.record_then_claim(choices, now, claim)

    def run(self, done: threading.Event) -> None:
        """Flush as outcomes arrive until `done`; a database outage only delays them."""
        backoff = Backoff()
        while not done.is_set():
            if self.has_work.wait(LOG_INTERVAL):
                pass  # what finishes while this batch is written goes in the next one
            elif not self.logs.buffered and not self.notes:
                continue  # nothing finished: still write running jobs' lines, for `log --follow`
            try:
                self.flush()
                backoff.reset()
            except Exception as error:
                delay = backoff.next()
                log.warning("cannot record outcomes (%s); again in %.1f s", error, delay)
                time.sleep(delay)

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
