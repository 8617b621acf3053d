"""Dead workers and their jobs: declared dead by silence, their jobs released, retried or failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import psutil

from jobengine import identity
from jobengine.clock import utc_text
from jobengine.model import LogLine, Move, Status
from jobengine.registry import Registry
from jobengine.retry import IDEMPOTENT_ATTEMPT_LIMIT, may_retry, retry_changes
from jobengine.store import Store, WorkerRecord
from jobengine.store.workers import STOPPED

log = logging.getLogger("jobengine.reaper")
__all__ = ["IDEMPOTENT_ATTEMPT_LIMIT", "Reaper", "process_gone"]
# psutil derives a process's start time from the boot time, which is known to the second.
PID_REUSE_MARGIN = 2.0


def process_gone(worker: WorkerRecord) -> bool:
    """True when no process of this host can be the worker's: by the kernel's counts where the
    worker stored them (a clock step does not fool them), else by the process's start time.

    A zombie has ended; a process started after the worker registered reuses its pid.
    """
    stored = identity.ProcessIdentity(worker.boot_id, worker.start_ticks, worker.pid_namespace)
    if stored.start_ticks is not None:
        return identity.is_gone(worker.pid, stored) is True
    try:
        process = psutil.Process(worker.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return bool(process.create_time() > worker.started_at + PID_REUSE_MARGIN)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False  # not ours to inspect (another user's process): assume it lives


class Steadiness:
    """Since when this process has used the database without a failure or a long silence.

    A reaper trusts what it reads of its peers' heartbeats only once it has itself been using
    the database steadily for `dead_after`: back from an outage (or a pause, or a lock held by
    another process), every peer's heartbeat looks old because they were waiting too.
    """

    def __init__(self, longest_gap: float) -> None:
        self.longest_gap = longest_gap
        self.since: float | None = None
        self.last: float | None = None

    def worked(self) -> None:
        now = time.monotonic()
        if self.since is None or self.last is None or now - self.last > self.longest_gap:
            self.since = now
        self.last = now

    def failed(self) -> None:
        self.since = self.last = None

    def steady_for(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


class Reaper:
    """Runs in every worker; idempotent, every move guarded, so several at once are harmless.

    A dead worker is declared dead and its jobs are moved in one transaction that holds the
    worker's row, so a worker that beats again at that moment either beats first (and keeps its
    jobs) or finds them gone (and its late outcomes are refused by the guarded moves).
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        actor: str,
        dead_after: float,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.registry, self.actor = store, registry, actor
        self.dead_after, self.clock = dead_after, clock

    def reap(self) -> int:
        """Declare silent workers dead and recover every job held by a worker not alive."""
        now = self.clock()
        cutoff = now - self.dead_after
        workers = self.store.workers.to_reap(cutoff)
        return sum(self.reap_worker(worker, now, cutoff) for worker in workers)

    def recover_earlier_workers(self, host: str, own_id: str) -> int:
        """At start-up: workers of this host whose process is gone are dead now, not in 20 s."""
        now = self.clock()
        count = 0
        for worker in self.store.workers.on_host(host):
            if worker.id != own_id and process_gone(worker):
                cause = f"its process {worker.pid} is gone"
                count += self.reap_worker(worker.id, now, now - self.dead_after, cause)
        return count

    def recover_process(self, host: str, pid: int, cause: str) -> int:
        """A process of this host is known to have ended (its parent saw it): reap its workers."""
        now = self.clock()
        count = 0
        for worker in self.store.workers.on_host(host):
            if worker.pid == pid:
                count += self.reap_worker(worker.id, now, now - self.dead_after, cause)
        return count

    def reap_worker(self, worker: str, now: float, cutoff: float, cause: str | None = None) -> int:
        """Declare `worker` dead (unless it beat since `cutoff` and no `cause` is known) and
        move every job it holds; return how many jobs moved."""

        def plan(record: WorkerRecord | None, rows: list[dict[str, Any]]) -> list[Move]:
            why = _why(worker, record, cause, rows)
            return [self.move(row, why, now) for row in rows]

        reaped = self.store.workers.reap(worker, now, cutoff, cause is not None, plan)
        if reaped.declared and reaped.record is not None:
            last = utc_text(reaped.record.heartbeat)
            known = f" ({cause})" if cause else ""
            log.warning("reap worker %s: no heartbeat since %s%s", worker, last, known)
        lines = []  # each job's own log says it too
        for move in reaped.moves:
            log.warning("%s job %s: %s", move.verb, move.job_id, move.reason)
            text = f"{move.verb}: {move.reason}"
            lines.append(LogLine(move.job_id, move.attempt, now, "WARNING", text))
        self.store.logs.append(lines)
        return len(reaped.moves)

    def recover_unheld(self, worker: str, rows: list[dict[str, Any]], held: Collection[int]) -> int:
        """Jobs the database gives `worker` that the worker itself does not hold (it lost them
        to a failure) are released, retried or failed at once, not kept alive by its beats."""
        lost = [row for row in rows if row["id"] not in held]
        if not lost:
            return 0
        now = self.clock()
        why = f"worker {worker} does not hold this job (it was lost inside the worker)"
        moves = [self.move(row, why, now, ended_by="its worker lost it") for row in lost]
        won = self.store.jobs.move_many(moves, now)
        for move, ok in zip(moves, won, strict=True):
            if ok:
                log.error("%s job %s: %s", move.verb, move.job_id, move.reason)
        return sum(won)

    def move(
        self, row: dict[str, Any], why: str, now: float, ended_by: str = "worker died"
    ) -> Move:
        """The move for one job of a dead worker (its row as the workers table reads it)."""
        source = Status(row["status"])
        target, verb, reason, changes = self.decide(row, source, why, now, ended_by)
        guard = (row["id"], row["attempt"], source)
        return Move(*guard, target, verb, self.actor, reason, changes, row["worker"])

    def decide(
        self, row: dict[str, Any], source: Status, why: str, now: float, ended_by: str
    ) -> tuple[Status, str, str, dict[str, Any]]:
        """QUEUED is released; TO_CANCEL ends canceled; RUNNING, its attempt lost with its
        worker, is retried if it may be, else it fails: (target, verb, reason, changes)."""
        if source is Status.QUEUED:
            return Status.PENDING, "release", why, {"worker": None, "queued_at": None}
        if source is Status.TO_CANCEL:
            reason = f"{why}; the job was being canceled, so it ends canceled"
            errors = f"{ended_by} while the job was being canceled"
            return Status.CANCELED, "cancel", reason, {"finished_at": now, "errors": errors}
        idempotent = row["type"] in self.registry and self.registry.get(row["type"]).idempotent
        if may_retry(row["attempt"], row["max_attempts"], idempotent, lost=True):
            changes, delay = retry_changes(row["attempt"], now)
            reason = f"{why}; attempt {row['attempt']} lost, retry in {delay:.1f} s"
            return Status.PENDING, "retry", reason, changes
        errors = f"{ended_by} while running this job; rerun it if that is safe"
        reason = f"{why}; {ended_by} while running this job"
        return Status.FAILURE, "reap", reason, {"finished_at": now, "errors": errors}


def _why(
    worker: str, record: WorkerRecord | None, cause: str | None, rows: list[dict[str, Any]]
) -> str:
    """The reason written on each job of a dead worker."""
    if record is None:
        last = max((row["heartbeat"] for row in rows if row["heartbeat"]), default=None)
        text = f"worker {worker} is not registered and stopped heartbeating at {utc_text(last)}"
    elif record.state == STOPPED:
        stopped = utc_text(record.stopped_at)
        text = f"worker {worker} stopped at {stopped} without recording this job"
    else:
        text = f"worker {worker} stopped heartbeating at {utc_text(record.heartbeat)}"
    return f"{text} ({cause})" if cause else text
