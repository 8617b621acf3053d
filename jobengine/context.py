"""The job's context: its identity, its log, progress, and the cooperative cancel helpers."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from jobengine import interrupts
from jobengine.interrupts import JobCanceled

_current = threading.local()
__all__ = ["JobCanceled", "JobContext", "StopKind", "current_job", "job_logger", "set_current"]


class StopKind(enum.StrEnum):
    """Why a running job is being stopped; each kind climbs the same ladder."""

    CANCEL = "cancel"  # someone asked for it
    TIMEOUT = "timeout"  # it ran past its timeout
    SHUTDOWN = "shutdown"  # its worker is stopping
    RECOVERED = "recovered"  # its worker was declared dead and the job given to others
    FENCED = "fenced"  # its worker lost the database for dead_after: others take its jobs


def current_job() -> JobContext | None:
    """The context of the job running in this thread, or None outside a job."""
    return getattr(_current, "context", None)


def set_current(context: JobContext | None) -> None:
    _current.context = context


@dataclass
class JobContext:
    """What a job function receives as `ctx`; also returned by `jobengine.current_job()`."""

    job_id: int
    attempt: int
    type: str
    log: logging.Logger
    report_progress: Callable[[float, str | None], None] = field(repr=False)
    stop_kind: StopKind | None = None
    stop_reason: str | None = None
    # Made by the first `sleep` (or stop request): most jobs never need one, and an Event per
    # job was a tenth of a busy worker's recording thread.
    stop_flag: threading.Event | None = field(default=None, repr=False)
    thread_id: int | None = field(default=None, repr=False)
    running: bool = field(default=False, repr=False)
    interrupted: bool = field(default=False, repr=False)  # sent one: `end` drops what is left
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cancel_requested(self) -> bool:
        return self.stop_kind is not None

    def check_cancel(self) -> None:
        """Raise JobCanceled if this job is being stopped; call it often in long loops."""
        if self.stop_kind is not None:
            raise JobCanceled(self.stop_reason or "canceled")

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake and raise JobCanceled at once if the job is being stopped."""
        with self.lock:
            if self.stop_flag is None:
                self.stop_flag = threading.Event()
            flag = self.stop_flag
        if self.stop_kind is None:  # read after the flag exists: a stop from now on sets it
            flag.wait(seconds)
        self.check_cancel()

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress between 0 and 1 (shown in `jobengine show` and the dashboard)."""
        self.report_progress(max(0.0, min(1.0, float(fraction))), message)

    def request_stop(self, kind: StopKind | str, reason: str) -> bool:
        """Step 1 of the ladder: set the cancel flag.

        Returns False if a stop was already requested (the first kind and reason stand).
        """
        with self.lock:
            if self.stop_kind is not None:
                return False
            # The reason first: whoever sees the kind (check_cancel, without the lock) sees it.
            self.stop_reason, self.stop_kind = reason, StopKind(kind)
            flag = self.stop_flag
        if flag is not None:
            flag.set()
        return True

    def interrupt(self) -> bool:
        """Step 2 of the ladder: raise JobCanceled inside the job's thread while it runs (as
        it leaves engine code, if it is inside it)."""
        with self.lock:
            if not self.running or self.thread_id is None:
                return False
            self.interrupted = True
            return interrupts.interrupt(self.thread_id)

    def begin(self) -> None:
        with self.lock:
            self.thread_id = threading.get_ident()
            self.running = True

    def end(self) -> None:
        """The job function has returned: no interrupt may land after this point. (None was
        sent unless `interrupt` was called: most jobs skip the clearing, 1 us of their thread.)"""
        with self.lock:
            self.running = False
            if self.interrupted and self.thread_id is not None:
                interrupts.forget(self.thread_id)
                interrupts.raise_in_thread(self.thread_id, None)


def job_logger(job_type: str) -> logging.Logger:
    """`ctx.log`: passes INFO and up whatever the root level, to the job's own log."""
    logger = logging.getLogger(f"job.{job_type}")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger
