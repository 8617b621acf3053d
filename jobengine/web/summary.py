"""What the Overview and Health pages show: counts, jobs per minute, waiting jobs, checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from jobengine.cron import format_duration
from jobengine.engine import Engine
from jobengine.model import TERMINAL, Job, Status
from jobengine.store.listing import JobQueries
from jobengine.store.workers import WorkerOverview
from jobengine.web.ended import Ended, EndedJobs
from jobengine.web.seams import Check

OK, WARN, FAIL = "OK", "WARN", "FAIL"
UNENDED = tuple(status for status in Status if status not in TERMINAL)
WAIT_WARNING = 60.0  # seconds a due job may wait before the health banner mentions it
LIVE_STATES = ("alive", "draining")


@dataclass(frozen=True)
class Minute:
    """Jobs that ended in one minute: succeeded (SUCCESS, WARNING), failed, canceled."""

    start: float
    succeeded: int
    failed: int
    canceled: int


@dataclass(frozen=True)
class Summary:
    now: float
    counts: dict[str, int]
    minutes: list[Minute]
    oldest_due: Job | None
    workers: list[WorkerOverview]
    checks: list[Check]
    doctor_available: bool

    @property
    def live_workers(self) -> int:
        return sum(1 for worker in self.workers if worker.state in LIVE_STATES)

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.level != OK]

    @property
    def busiest_minute(self) -> int:
        return max([1, *(m.succeeded + m.failed + m.canceled for m in self.minutes)])


def bars(reading: Ended) -> list[Minute]:
    """The window's minutes as the chart shows them, oldest first (the current minute last)."""
    return [
        Minute(
            minute.start,
            minute.statuses[Status.SUCCESS] + minute.statuses[Status.WARNING],
            minute.statuses[Status.FAILURE],
            minute.statuses[Status.CANCELED],
        )
        for minute in reading.minutes
    ]


def summarize(
    engine: Engine,
    queries: JobQueries,
    ended: EndedJobs,
    doctor: Callable[[], list[Check] | None],
    dead_after: float,
) -> Summary:
    """Everything the Overview shows, read now: jobs not ended through the status index, ended
    ones from the running count, the checks from `doctor` (which may keep them a while)."""
    started = time.monotonic()
    unended = queries.count_by_status_and_queue(UNENDED)
    round_trip = time.monotonic() - started
    now = engine.clock.now()
    reading = ended.read(now)
    counts = {status.value: reading.totals.get(status, 0) for status in Status}
    for (status, _queue), count in unended.items():
        counts[status.value] += count
    workers = engine.store.workers.overview(now, dead_after)
    oldest = queries.oldest_due(now)
    checks = doctor()
    available = checks is not None
    if checks is None:
        checks = basic_checks(engine, workers, oldest, now, round_trip)
    return Summary(now, counts, bars(reading), oldest, workers, checks, available)


def basic_checks(
    engine: Engine,
    workers: list[WorkerOverview],
    oldest: Job | None,
    now: float,
    round_trip: float,
) -> list[Check]:
    """The checks the dashboard can make itself until the doctor exists (issue 12)."""
    checks = [Check("database", OK, f"reachable, a query took {round_trip * 1000:.1f} ms")]
    live = [worker for worker in workers if worker.state in LIVE_STATES]
    dead = [worker for worker in workers if worker.state == "dead"]
    if not live:
        checks.append(
            Check(
                "workers",
                FAIL,
                "no live worker: no job runs and no schedule fires",
                "start one with `jobengine worker` (or `jobengine run`)",
            )
        )
    else:
        checks.append(Check("workers", OK, f"{len(live)} live worker(s)"))
    if dead:
        names = ", ".join(worker.record.id for worker in dead)
        checks.append(
            Check("dead workers", WARN, f"{len(dead)} dead: {names}", "their jobs are recovered")
        )
    checks.append(_waiting_check(oldest, now))
    checks.append(_schedules_check(engine))
    return checks


def _waiting_check(oldest: Job | None, now: float) -> Check:
    if oldest is None:
        return Check("waiting jobs", OK, "no job is waiting past its time")
    waited = max(0.0, now - oldest.run_at)
    message = f"job {oldest.id} ({oldest.type}, queue {oldest.queue}) has waited {wait(waited)}"
    if waited < WAIT_WARNING:
        return Check("waiting jobs", OK, message)
    return Check("waiting jobs", WARN, message, f"check that a live worker serves {oldest.queue!r}")


def _schedules_check(engine: Engine) -> Check:
    late = [s.name for s in engine.schedules.list() if engine.schedules.overdue(s)]
    if not late:
        return Check("schedules", OK, "no schedule is overdue")
    return Check(
        "schedules",
        WARN,
        f"overdue (no worker is ticking them): {', '.join(late)}",
        "start a worker; every worker fires the schedules",
    )


def wait(seconds: float) -> str:
    """A wait as people read it: '0.4 s', '42 s', '3m20s'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return format_duration(seconds)
