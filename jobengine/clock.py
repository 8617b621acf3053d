"""The injected clock: the time stored in the database and compared across processes.

Engines use a DatabaseClock by default; tests inject a ManualClock. Local waits (timeouts,
intervals) use time.monotonic directly: a test moves stored time, never the length of a wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC), the time stored in the database."""

    def measure(self) -> None:
        """Bring the clock in step with the shared one, where it follows one."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def measure(self) -> None:
        """The host's clock is its own measure."""


class ManualClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

    def measure(self) -> None:
        """Only the test moves it."""


def utc_text(moment: float | None) -> str:
    """A stored time as people read it: '2026-12-01 09:21:58 UTC' ('an unknown time' for None)."""
    if moment is None:
        return "an unknown time"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class DatabaseClock:
    """Every process's "now" read off one clock, for every decision that spans processes.

    `read_offset` gives that clock minus this process's monotonic clock: the database server's
    clock on PostgreSQL (shared by every host), and on SQLite a timeline that all processes of
    the host share and that no step of the wall clock moves. Between readings the clock runs on
    the monotonic clock, so a step of the host's wall clock changes nothing; a worker reads it
    again after every heartbeat.
    """

    def __init__(self, read_offset: Callable[[], float], refresh: float = 60.0) -> None:
        self.read_offset, self.refresh = read_offset, refresh
        self.offset: float | None = None
        self.next_reading = 0.0
        self.lock = threading.Lock()

    def now(self) -> float:
        if self.offset is None or time.monotonic() >= self.next_reading:
            self.measure()
        assert self.offset is not None
        return time.monotonic() + self.offset

    def measure(self) -> None:
        """Read the clock again; if it cannot be read, keep the last reading (or, before the
        first one, this host's wall clock) and try again in a second."""
        if not self.lock.acquire(blocking=self.offset is None):
            return  # another thread is reading it
        try:
            self.offset = self.read_offset()
            self.next_reading = time.monotonic() + self.refresh
        except Exception:
            if self.offset is None:
                self.offset = time.time() - time.monotonic()
            self.next_reading = time.monotonic() + 1.0
        finally:
            self.lock.release()
