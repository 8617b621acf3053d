"""Dead workers and their jobs: declared dead by silence, their jobs released, retried or failed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psutil

from jobengine.model import Status
from jobengine.recorder import retry_delay
from jobengine.registry import Registry
from jobengine.store import LogLine, Move, Store
from jobengine.store.workers import DEAD

log = logging.getLogger("jobengine.reaper")


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return "an unknown time"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Reaper:
    """Runs in every worker; idempotent, every move guarded, so several at once are harmless."""

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
        for worker in self.store.workers.find_dead(cutoff):
            if self.store.workers.mark(worker.id, DEAD, worker.state, now):
                log.warning(
                    "reap worker %s: no heartbeat since %s", worker.id, _time(worker.heartbeat)
                )
        return self.recover(self.store.workers.orphaned_jobs(cutoff), now)

    def recover_previous_incarnations(self, host: str, own_id: str) -> int:
        """At start-up: workers of this host whose process is gone are dead now, not in 20 s."""
        now = self.clock()
        for worker in self.store.workers.on_host(host):
            gone = worker.id != own_id and not _alive(worker.pid)
            if gone and self.store.workers.mark(worker.id, DEAD, worker.state, now):
                log.warning("reap worker %s: its process %s is gone", worker.id, worker.pid)
        return self.recover(self.store.workers.orphaned_jobs(now - self.dead_after), now)

    def recover(self, rows: list[dict[str, Any]], now: float) -> int:
        moves = [self._move(row, now) for row in rows]
        won = self.store.jobs.move_many(moves, now)
        lines = []
        for move, ok in zip(moves, won, strict=True):
            if ok:
                log.warning("%s job %s: %s", move.verb, move.job_id, move.reason)
                lines.append(
                    LogLine(
                        move.job_id, move.attempt, now, "WARNING", f"{move.verb}: {move.reason}"
                    )
                )
        self.store.logs.append(lines)
        return len(lines)

    def _move(self, row: dict[str, Any], now: float) -> Move:
        source = Status(row["status"])
        if row["worker_state"] is None:
            why = f"worker {row['worker']} is not registered"
        else:
            why = f"worker {row['worker']} stopped heartbeating at {_time(row['worker_heartbeat'])}"
        guard: dict[str, Any] = {
            "job_id": row["id"],
            "attempt": row["attempt"],
            "source": source,
            "actor": self.actor,
            "worker": row["worker"],
        }
        if source is Status.QUEUED:
            return Move(
                **guard,
                target=Status.PENDING,
                verb="release",
                reason=why,
                changes={"worker": None, "queued_at": None},
            )
        if source is Status.TO_CANCEL:
            return Move(
                **guard,
                target=Status.CANCELED,
                verb="cancel",
                reason=f"{why}; the job was being canceled",
                changes={"finished_at": now},
            )
        job_type = self.registry.get(row["type"]) if row["type"] in self.registry else None
        if row["attempt"] < row["max_attempts"] or (job_type is not None and job_type.idempotent):
            delay = retry_delay(row["attempt"])
            return Move(
                **guard,
                target=Status.PENDING,
                verb="retry",
                reason=f"{why}; attempt {row['attempt']} lost, retried",
                changes={
                    "worker": None,
                    "attempt": row["attempt"] + 1,
                    "run_at": now + delay,
                    "started_at": None,
                    "queued_at": None,
                },
            )
        return Move(
            **guard,
            target=Status.FAILURE,
            verb="reap",
            reason=f"{why}; worker died while running this job",
            changes={
                "finished_at": now,
                "errors": "worker died while running this job; rerun it if safe",
            },
        )


def _alive(pid: int) -> bool:
    return pid == os.getpid() or psutil.pid_exists(pid)
