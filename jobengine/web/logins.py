"""How often one client may guess the password: failed logins are limited per address."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

FAILURES = 5  # failed logins from one address ...
WINDOW = 60.0  # ... within this many seconds, and that address waits until the window passes
MOST_ADDRESSES = 10_000  # addresses remembered at once; the oldest are forgotten first


class LoginLimiter:
    """Counts failed logins per client address in a sliding window, in memory.

    `clock` gives seconds (time.monotonic by default; tests pass their own and move it)."""

    def __init__(
        self,
        failures: int = FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, address: str) -> int:
        """Whole seconds `address` must wait before it may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            recent = self._recent(address, now)
            if recent is None or len(recent) < self.failures:
                return 0
            return max(1, math.ceil(recent[-self.failures] + self.window - now))

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            recent = self._recent(address, now)
            if recent is None:
                if len(self._failed) >= MOST_ADDRESSES:
                    self._forget_oldest()
                recent = self._failed[address] = deque(maxlen=self.failures)
            recent.append(now)

    def succeeded(self, address: str) -> None:
        """A right password clears the address's failures."""
        with self._lock:
            self._failed.pop(address, None)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        """The address's failures still inside the window (None when it has none)."""
        recent = self._failed.get(address)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            del self._failed[address]
            return None
        return recent

    def _forget_oldest(self) -> None:
        oldest = min(self._failed, key=lambda address: self._failed[address][-1])
        del self._failed[oldest]
