"""The job context's cooperative stop: check_cancel and sleep see a stop whenever it comes."""

from __future__ import annotations

import threading
import time

import pytest

from jobengine.context import JobCanceled, JobContext, StopKind, job_logger
from jobengine.interrupts import shielded
from tests.waiting import wait_for


def context() -> JobContext:
    return JobContext(1, 1, "example", job_logger("example"), lambda fraction, message: None)


def test_a_stop_requested_before_the_sleep_ends_it_at_once() -> None:
    ctx = context()
    assert ctx.request_stop(StopKind.CANCEL, "asked by hand")
    began = time.monotonic()
    with pytest.raises(JobCanceled, match="asked by hand"):
        ctx.sleep(60)
    assert time.monotonic() - began < 30  # not the minute it asked for
    assert ctx.cancel_requested


def test_a_stop_requested_during_the_sleep_wakes_it() -> None:
    ctx, raised = context(), threading.Event()

    def sleeper() -> None:
        try:
            ctx.sleep(60)
        except JobCanceled:
            raised.set()

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    wait_for(lambda: ctx.stop_flag is not None, what="the sleep to begin")
    assert not ctx.cancel_requested
    assert ctx.request_stop(StopKind.TIMEOUT, "ran past its timeout")
    assert raised.wait(30), "the sleeping job was not woken by its stop"
    thread.join(30)


def test_the_first_stop_stands_and_check_cancel_names_its_reason() -> None:
    ctx = context()
    ctx.check_cancel()  # no stop: nothing raised
    assert ctx.request_stop(StopKind.SHUTDOWN, "interrupted by shutdown")
    assert not ctx.request_stop(StopKind.CANCEL, "a later cancel")
    assert ctx.stop_kind is StopKind.SHUTDOWN
    with pytest.raises(JobCanceled, match="interrupted by shutdown"):
        ctx.check_cancel()


def test_an_interrupt_held_back_as_its_job_ends_never_reaches_the_next_job() -> None:
    """A job interrupted while inside engine code (held back until the code is left) ends
    there: its end drops the interrupt, so the thread's next job, never interrupted itself,
    runs to its end undisturbed."""
    first, second = context(), context()
    inside, interrupted = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def thread() -> None:
        try:
            with shielded():  # engine code, as when a job's last log line is being written
                first.begin()
                inside.set()
                interrupted.wait(10)
                first.end()
            second.begin()
            second.end()
            outcomes.append("the next job ended undisturbed")
        except JobCanceled:
            outcomes.append("JobCanceled reached the thread after its job had ended")

    worker = threading.Thread(target=thread)
    worker.start()
    assert inside.wait(10)
    assert first.interrupt()  # held back by the shield
    interrupted.set()
    worker.join(10)

    assert outcomes == ["the next job ended undisturbed"]
    assert (first.interrupted, second.interrupted) == (True, False)
