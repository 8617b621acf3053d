"""Waiting on a condition with a deadline, and a worker running in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from jobengine import Engine, Status
from jobengine.worker import Settings, Worker

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_for_status(
    engine: Engine, job_id: int, statuses: set[Status], timeout: float = 10.0
) -> Status:
    def reached() -> Status | None:
        status = engine.get(job_id).status
        return status if status in statuses else None

    return wait_for(reached, timeout, f"job {job_id} to reach {sorted(statuses)}")


@contextmanager
def worker_thread(engine: Engine, **settings: Any) -> Iterator[Worker]:
    """A real worker running in a thread of this process, stopped (and drained) at the end."""
    options = {
        "poll_interval": 0.1,
        "cancel_grace": 0.5,
        "kill_grace": 1.0,
        "shutdown_timeout": 5.0,
        **settings,
    }
    worker = Worker(engine, Settings(**options))
    thread = threading.Thread(target=worker.run, daemon=True, name="test-worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(options["shutdown_timeout"] + options["kill_grace"] + 10)
        assert not thread.is_alive(), "the worker did not stop"
