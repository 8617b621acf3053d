"""The cancel ladder: finds jobs to stop (cancel, timeout, shutdown) and climbs it step by step."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from jobengine.context import StopKind
from jobengine.executors import Executor, Running
from jobengine.model import Job, Status
from jobengine.runner import Outcome
from jobengine.store import Store

STEPS = {
    1: "step 1, its cancel flag (the job stopped itself)",
    2: "step 2, an exception raised in its thread",
    3: "step 3, SIGTERM to its process",
    4: "step 4, SIGKILL of its process group",
}


Note = Callable[[Job, Status, str, str, str, float], None]


class Ladder:
    """Every step is written to the job's log and, as an event row, to its timeline.

    The steps themselves (flag, exception, signals) are local and never wait for the database:
    `climb` runs in a thread of its own, and the event rows are handed to `note`, which writes
    them when it can.
    """

    def __init__(
        self,
        store: Store,
        executors: Mapping[str, Executor],
        actor: str,
        clock: Callable[[], float],
        note: Note,
    ) -> None:
        self.store, self.executors, self.actor, self.clock = store, executors, actor, clock
        self.note = note

    def request_stop(self, running: Running, kind: StopKind, reason: str) -> None:
        """Step 1: set the job's cancel flag."""
        if not running.context.request_stop(kind, reason):
            return
        running.stop_requested = time.monotonic()
        running.step = 1
        self._record(running, f"{kind}: {reason}; step 1: set the job's cancel flag")

    def read_cancels(self, active: Sequence[Running], owner: str) -> None:
        """Step 1 for every running job whose cancel was requested (a query)."""
        if not active:
            return
        by_id = {running.job.id: running for running in active}
        for job in self.store.jobs.owned(owner, [Status.TO_CANCEL]):
            if job.id in by_id:
                self.request_stop(by_id[job.id], StopKind.CANCEL, "canceled")

    def climb(self, active: Sequence[Running]) -> None:
        """Take every step that is due among `active`: timeouts, and the next rung of stops
        already requested. No database call: it runs on time whatever the database does."""
        now = time.monotonic()
        for running in active:
            if running.deadline is not None and now >= running.deadline:
                reason = f"timed out after {running.job.timeout:g} s"
                self.request_stop(running, StopKind.TIMEOUT, reason)
            step = self.executors[running.job_type.isolation].escalate(running, now)
            if step:
                self._record(running, f"{running.context.stop_kind}: {step}")

    def explain(self, running: Running, outcome: Outcome) -> Outcome:
        """Say in the job's log and its reason which step stopped it (or that none did)."""
        if not outcome.stopped:
            running.log.write("WARNING", "the job finished before it could be stopped")
            return outcome
        reason = f"{outcome.errors or running.context.stop_reason}; stopped by "
        reason += STEPS.get(running.step, STEPS[1])
        running.log.write("WARNING", reason)
        return dataclasses.replace(outcome, errors=reason)

    def _record(self, running: Running, text: str) -> None:
        running.log.write("WARNING", text)
        kind = running.context.stop_kind
        status = Status.TO_CANCEL if kind is StopKind.CANCEL else Status.RUNNING
        self.note(running.job, status, "cancel", self.actor, text, self.clock())
