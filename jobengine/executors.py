"""Where jobs run: a pool of threads (the default) and the cancel ladder's thread steps."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from jobengine.context import JobCanceled, JobContext
from jobengine.joblog import JobLog
from jobengine.model import Job
from jobengine.registry import JobType
from jobengine.runner import Outcome, run_job

log = logging.getLogger("jobengine.worker")


@dataclass
class Running:
    """A job this worker has started: what it is, how it runs, and how far its stop has got."""

    job: Job
    job_type: JobType
    context: JobContext
    log: JobLog
    started: float
    deadline: float | None
    stop_requested: float | None = None
    step: int = 0
    last_push: float = 0.0
    ended: threading.Event = field(default_factory=threading.Event)


Finished = Callable[[Running, Outcome], None]


class Executor(Protocol):
    def submit(self, running: Running, finished: Finished) -> None:
        """Run the job; call `finished` exactly once with its outcome."""

    def escalate(self, running: Running, now: float) -> str | None:
        """Take the next ladder step if it is due; describe it, or None if nothing was done."""

    def close(self, wait: float) -> None:
        """Stop the executor's threads or processes."""


class ThreadPool:
    """Reusable threads: each running job gets its own without paying thread start-up."""

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self.tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, task: Callable[[], None]) -> None:
        with self.lock:
            if self.idle == 0 and len(self.threads) < self.size:
                thread = threading.Thread(
                    target=self._loop, daemon=True, name=f"{self.name}-{len(self.threads) + 1}"
                )
                self.threads.append(thread)
                thread.start()
            else:
                self.idle -= 1
        self.tasks.put(task)

    def _loop(self) -> None:
        while True:
            try:
                task = self.tasks.get()
                if task is None:
                    return
                task()
            except JobCanceled:
                pass  # an interrupt that landed after its job ended
            with self.lock:
                self.idle += 1

    def close(self, wait: float) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        deadline = time.monotonic() + wait
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class ThreadExecutor:
    """Runs each job in a pooled thread; stops it by flag, then by an exception in its thread."""

    def __init__(self, concurrency: int, cancel_grace: float) -> None:
        self.pool = ThreadPool(concurrency, "job")
        self.cancel_grace = cancel_grace

    def submit(self, running: Running, finished: Finished) -> None:
        def task() -> None:
            outcome = run_job(running.job_type, running.job.args, running.context, running.log)
            finished(running, outcome)

        self.pool.submit(task)

    def escalate(self, running: Running, now: float) -> str | None:
        if running.stop_requested is None or now - running.stop_requested < self.cancel_grace:
            return None
        if now - running.last_push < self.cancel_grace:
            return None
        running.last_push = now
        if not running.context.interrupt():
            return None
        if running.step >= 2:
            return None  # pushed again quietly: code that swallowed it gets it once more
        running.step = 2
        return "step 2: raised JobCanceled inside the job's thread"

    def close(self, wait: float) -> None:
        self.pool.close(wait)
