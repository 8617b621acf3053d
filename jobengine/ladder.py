"""The cancel ladder: finds jobs to stop (cancel, timeout, shutdown) and climbs it step by step."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from jobengine.context import StopKind
from jobengine.errors import DatabaseUnavailable
from jobengine.executors import Executor, Running
from jobengine.model import Status
from jobengine.runner import Outcome
from jobengine.store import Store

STEPS = {
    1: "step 1, its cancel flag (the job stopped itself)",
    2: "step 2, an exception raised in its thread",
    3: "step 3, SIGTERM to its process",
    4: "step 4, SIGKILL of its process group",
}


class Ladder:
    """Every step is written to the job's log and, as an event row, to its timeline."""

    def __init__(
        self,
        store: Store,
        executors: Mapping[str, Executor],
        actor: str,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.executors, self.actor, self.clock = store, executors, actor, clock

    def request_stop(self, running: Running, kind: StopKind, reason: str) -> None:
        """Step 1: set the job's cancel flag."""
        if not running.context.request_stop(kind, reason):
            return
        running.stop_requested = time.monotonic()
        running.step = 1
        self._record(running, f"{kind}: {reason}; step 1: set the job's cancel flag")

    def check(self, active: Sequence[Running], owner: str, look_for_cancels: bool) -> None:
        """Take every step that is due among `active`: timeouts, and cancel requests (read from
        the database only when `look_for_cancels`, which costs a query)."""
        if not active:
            return
        if look_for_cancels:
            by_id = {running.job.id: running for running in active}
            for job in self.store.jobs.owned(owner, [Status.TO_CANCEL]):
                if job.id in by_id:
                    self.request_stop(by_id[job.id], StopKind.CANCEL, "canceled")
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
        try:
            self.store.jobs.note(running.job, status, "cancel", self.actor, text, self.clock())
        except DatabaseUnavailable:
            pass  # the job's log has the step; its timeline misses it
