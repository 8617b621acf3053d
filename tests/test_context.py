"""The job context's cooperative stop: check_cancel and sleep see a stop whenever it comes."""

from __future__ import annotations

import threading
import time

import pytest

from jobengine.context import JobCanceled, JobContext, StopKind, job_logger
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
