"""Fault: the cancel exception lands while a job's thread is in engine code that takes a lock
outside the database (waking the workers, logging). Python takes those locks a step before
their `with` or `try` holds them; an exception landing in that step keeps the lock taken for
good, and the next thread to want it waits forever (a worker that can no longer be woken or
stopped, every job's logging stuck). Interrupts are sent the way the ladder's step 2 sends them,
again and again, and after each the lock must be free."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobengine import Engine, joblog
from jobengine.interrupts import JobCanceled, SignalEvent, interrupt
from jobengine.joblog import JobLog
from jobengine.model import LogLine

INTERRUPTS = 500  # without the fixes the lock stays taken within the first 5-110
DEADLINE = 30.0  # seconds for all of them: the loop ends by itself
LOCK_WAIT = 5.0  # a free lock is taken at once; a kept one never


def interrupts_keep_free(
    step: Callable[[], Any], lock: Any, setup: Callable[[], Any] = lambda: None
) -> tuple[int | None, int]:
    """Up to INTERRUPTS times: start a thread that runs `step` over and over (after `setup`),
    interrupt it, wait for it to end, then take and give back `lock`. Return the number of the
    interrupt after which the lock stayed taken (None if it never did), and how many landed."""
    deadline = time.monotonic() + DEADLINE
    landed = 0
    for number in range(INTERRUPTS):
        if time.monotonic() > deadline:
            break
        job = OneJob(step, setup)
        job.thread.start()
        assert job.running.wait(LOCK_WAIT), "the job's thread did not start"
        assert job.thread.ident is not None
        interrupt(job.thread.ident)
        job.thread.join(LOCK_WAIT)
        assert not job.thread.is_alive(), "an interrupt did not land"
        landed += job.canceled
        if not lock.acquire(timeout=LOCK_WAIT):
            return number, landed
        lock.release()
    return None, landed


class OneJob:
    """A thread that runs `step` until the cancel lands, wherever in the loop it lands."""

    def __init__(self, step: Callable[[], Any], setup: Callable[[], Any]) -> None:
        self.step, self.setup = step, setup
        self.canceled = False
        self.running = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="job")

    def _run(self) -> None:
        self.setup()
        try:
            self.running.set()
            while True:
                self.step()
        except JobCanceled:
            self.canceled = True


@pytest.mark.timeout(120)
def test_a_cancel_landing_while_a_job_wakes_the_workers_leaves_their_event_free(
    tmp_path: Path,
) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    wake = SignalEvent()  # what a worker listens on
    engine.on_submit(wake.set)
    try:
        kept_after, landed = interrupts_keep_free(engine.wake_workers, wake._cond)
        assert kept_after is None, f"the event's lock stayed taken after interrupt {kept_after}"
        assert landed > 0, "no cancel landed: the test did not build its fault"
    finally:
        engine.close()


@pytest.mark.timeout(120)
def test_unshielded_the_same_loop_keeps_the_lock_which_is_the_fault_this_guards() -> None:
    wake = SignalEvent()
    kept_after, _ = interrupts_keep_free(wake.set, wake._cond)
    assert kept_after is not None, "no lock was kept: this check could not tell the fix apart"


class Lines:
    def __init__(self) -> None:
        self.count = 0

    def emit(self, line: LogLine) -> None:
        self.count += 1


@pytest.mark.timeout(120)
def test_a_cancel_landing_while_a_job_logs_leaves_logging_free() -> None:
    # The job's records reach the routing handler alone: pytest's own handlers on the root
    # logger take their locks the same way, and a kept one would stop the test run itself.
    lines = Lines()
    logger = logging.getLogger("job.looping")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(joblog._handler)
    routing = joblog._handler.lock
    assert routing is not None
    try:
        kept_after, landed = interrupts_keep_free(
            lambda: logger.info("working"),
            routing,
            setup=lambda: joblog.attach(JobLog(1, 1, lines.emit)),
        )
        assert kept_after is None, f"the handler's lock stayed taken after interrupt {kept_after}"
        assert landed > 0 and lines.count > 0
    finally:
        logger.removeHandler(joblog._handler)
        logger.propagate = True
