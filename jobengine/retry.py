"""Whether and when an attempt runs again, and how long to wait for the database; pure."""

from __future__ import annotations

import random
from typing import Any

MAX_RETRY_DELAY = 3600.0
# An idempotent job whose attempts keep getting lost (its worker dies, or shuts down under it)
# is retried past its max_attempts, but not for ever: a job that kills every worker it runs on
# must stop somewhere.
IDEMPOTENT_ATTEMPT_LIMIT = 10


def may_retry(attempt: int, max_attempts: int, idempotent: bool, lost: bool) -> bool:
    """Attempts left; or, for an attempt that was lost rather than failed (its worker died or
    stopped), a job type declared idempotent, up to IDEMPOTENT_ATTEMPT_LIMIT attempts."""
    if attempt < max_attempts:
        return True
    return lost and idempotent and attempt < IDEMPOTENT_ATTEMPT_LIMIT


def retry_changes(attempt: int, now: float) -> tuple[dict[str, Any], float]:
    """What a retry writes: the next attempt, back in the queue after a backoff; and the delay.

    The backoff is exponential with jitter: about 2^attempt seconds, at most an hour.
    """
    delay = float(min(MAX_RETRY_DELAY, 1.0 * 2**attempt) * random.uniform(0.5, 1.5))
    changes = {
        "attempt": attempt + 1,
        "run_at": now + delay,
        "worker": None,
        "started_at": None,
        "queued_at": None,
    }
    return changes, delay


class Backoff:
    """How long to wait before using the database again after it failed: doubling, capped."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first, self.most = first, most
        self.delay = first

    def next(self) -> float:
        """The wait before the next try; each failure doubles the one after it."""
        delay = self.delay
        self.delay = min(self.most, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = self.first
