"""Jobs that ended, counted once: exact totals and per-minute tallies without reading history.

Terminal statuses are never left and every ended job has its finished_at, so a minute that
ended a while ago (SETTLED_AFTER: outcomes are written in batches, a little after the fact)
never changes. This keeps the totals of everything before the last hour, and one tally per
settled minute of the last hour; each read counts only the unsettled minutes, through the
finished_at index. Everything is counted again from scratch every RECOUNT_SECONDS, which also
catches an outcome written later than SETTLED_AFTER. Oban Web and Sidekiq show counters kept
as jobs end for the same reason: counting a long history on every refresh does not scale.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobengine.model import TERMINAL, Status
from jobengine.store.listing import JobQueries, MinuteTally

WINDOW_MINUTES = 60  # the minutes shown: the current one and the 59 before it
SETTLED_AFTER = 120.0  # seconds after a minute's end from which its tally is final
RECOUNT_SECONDS = 3600.0  # how often everything is counted again from scratch
DURATION_BOUNDS = (0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
ENDED = tuple(sorted(TERMINAL))


@dataclass
class Minute:
    """What ended in one minute: per status, and the run times of those that had started."""

    start: float
    statuses: Counter[Status] = field(default_factory=Counter)
    timed: int = 0
    seconds: float = 0.0
    at_most: list[int] = field(default_factory=lambda: [0] * len(DURATION_BOUNDS))

    def add(self, tally: MinuteTally) -> None:
        self.statuses[tally.status] += tally.count
        self.timed += tally.timed
        self.seconds += tally.seconds
        pairs = zip(self.at_most, tally.at_most, strict=True)
        self.at_most = [mine + theirs for mine, theirs in pairs]


@dataclass(frozen=True)
class Ended:
    """A reading: totals of all time per terminal status, and the window's minutes."""

    totals: dict[Status, int]
    minutes: list[Minute]

    def durations(self) -> tuple[list[int], int, float]:
        """The run times of the window's jobs: (count at or below each bound, count, sum)."""
        at_most = [
            sum(m.at_most[index] for m in self.minutes) for index in range(len(DURATION_BOUNDS))
        ]
        return at_most, sum(m.timed for m in self.minutes), sum(m.seconds for m in self.minutes)


def grouped(tallies: Sequence[MinuteTally], first: int, last: int | None) -> dict[int, Minute]:
    """Tallies per minute; a minute the database rounded past the range's ends is kept in it."""
    minutes: dict[int, Minute] = {}
    for tally in tallies:
        minute = max(first, tally.minute if last is None else min(last, tally.minute))
        minutes.setdefault(minute, Minute(minute * 60.0)).add(tally)
    return minutes


class EndedJobs:
    """The dashboard's running count of ended jobs; `read` is cheap after the first time."""

    def __init__(self, queries: JobQueries) -> None:
        self.queries = queries
        self._lock = threading.Lock()
        self._counted_at: float | None = None
        self._before: Counter[Status] = Counter()  # every job that ended before _first
        self._first = 0  # the oldest minute kept one by one
        self._settled: dict[int, Minute] = {}  # minutes _first .. _settled_until - 1
        self._settled_until = 0

    def read(self, now: float) -> Ended:
        with self._lock:
            current = int(now // 60)
            first = current - WINDOW_MINUTES + 1
            if self._stale(now, first):
                self._count_from_scratch(now, first)
            self._settle(int((now - SETTLED_AFTER) // 60))
            self._fold(first)
            tallies = self.queries.ended_tallies(self._settled_until * 60.0, None, DURATION_BOUNDS)
            recent = grouped(tallies, self._settled_until, None)
            totals = Counter(self._before)
            for minute in (*self._settled.values(), *recent.values()):
                totals.update(minute.statuses)
            shown = [
                self._settled.get(number) or recent.get(number) or Minute(number * 60.0)
                for number in range(first, current + 1)
            ]
            return Ended({status: totals[status] for status in ENDED}, shown)

    def _stale(self, now: float, first: int) -> bool:
        """Count again: never counted, due, the clock went back, or the window left the kept
        minutes behind (nobody looked for a long while)."""
        if self._counted_at is None or not 0 <= now - self._counted_at < RECOUNT_SECONDS:
            return True
        return first < self._first or first > self._settled_until

    def _count_from_scratch(self, now: float, first: int) -> None:
        self._before = Counter(self.queries.ended_before(first * 60.0))
        self._first = self._settled_until = first
        self._settled = {}
        self._counted_at = now

    def _settle(self, until: int) -> None:
        """Tally, once, each minute before `until` not tallied yet."""
        if until <= self._settled_until:
            return
        tallies = self.queries.ended_tallies(
            self._settled_until * 60.0, until * 60.0, DURATION_BOUNDS
        )
        found = grouped(tallies, self._settled_until, until - 1)
        for number in range(self._settled_until, until):
            self._settled[number] = found.get(number) or Minute(number * 60.0)
        self._settled_until = until

    def _fold(self, first: int) -> None:
        """Minutes that left the window join the totals before it."""
        while self._first < first and self._first < self._settled_until:
            self._before.update(self._settled.pop(self._first).statuses)
            self._first += 1
