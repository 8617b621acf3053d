"""The --app module every host imports, and what its jobs wrote about where and when they ran.

Each execution appends "job_id attempt host pid start end" to a file named after its process:
once when it starts (end "-") and once when it ends, each line one unbuffered write, so that an
execution cut short by SIGKILL is still known. Times are CLOCK_MONOTONIC, which is one clock
for every process of this machine and which libfaketime leaves true on skewed hosts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from host_machine import Timeline

APP_SOURCE = '''
"""Job types for the multi-host tests."""
import functools
import os
import socket
import time

from jobengine import Engine

RUNS = os.environ.get("HOSTS_RUNS", "")  # unset in the test process, which only submits


def record(ctx, start, end):
    line = f"{ctx.job_id} {ctx.attempt} {socket.gethostname()} {os.getpid()} {start!r} {end}\\n"
    descriptor = os.open(
        os.path.join(RUNS, str(os.getpid())), os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )
    os.write(descriptor, line.encode())
    os.close(descriptor)


def traced(work):
    @functools.wraps(work)  # the registry reads the signature through __wrapped__
    def job(ctx, **arguments):
        start = time.monotonic()
        record(ctx, start, "-")
        try:
            return work(ctx, **arguments)
        finally:
            record(ctx, start, repr(time.monotonic()))

    return job


def short(ctx, milliseconds):
    time.sleep(milliseconds / 1000)  # blocks: no cancel point, as much job code does
    return socket.gethostname()


def nap(ctx, seconds):
    ctx.sleep(seconds)  # stops at once on cancel
    return socket.gethostname()


def register(engine):
    engine.job(traced(short), name="short", max_attempts=5)
    engine.job(traced(nap), name="nap", max_attempts=5)
    return engine


engine = register(Engine())
'''


@dataclass(frozen=True)
class Execution:
    job_id: int
    attempt: int
    host: str
    pid: int
    start: float
    end: float | None  # None: the process never recorded an end (killed, or still running)


def read_executions(folder: Path) -> list[Execution]:
    """Every execution the job functions recorded, its end line replacing its start line."""
    found: dict[tuple[int, int, str, int, float], Execution] = {}
    for path in sorted(folder.iterdir()):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) != 6:
                continue  # a line cut by SIGKILL mid-write cannot happen (one write), but be safe
            job, attempt, host, pid, start, end = fields
            key = (int(job), int(attempt), host, int(pid), float(start))
            found[key] = Execution(*key, None if end == "-" else float(end))
    return sorted(found.values(), key=lambda run: (run.job_id, run.start))


def ended_at(run: Execution, timeline: Timeline, now: float) -> float:
    """When an execution stopped: its own end, else when its process or host was killed."""
    if run.end is not None:
        return run.end
    kills = [*timeline.kills, timeline.process_kills.get(run.pid, math.inf)]
    return min((kill for kill in kills if kill >= run.start), default=now)


def overlap(
    first: Execution, second: Execution, timelines: Mapping[str, Timeline], now: float
) -> float:
    """Seconds both executions were running: each one's paused time is not running."""
    start = max(first.start, second.start)
    end = min(
        ended_at(first, timelines[first.host], now), ended_at(second, timelines[second.host], now)
    )
    if end <= start:
        return 0.0
    paused = max(timelines[run.host].paused_within(start, end) for run in (first, second))
    return max(0.0, end - start - paused)


def concurrent_runs(
    runs: Iterable[Execution], timelines: Mapping[str, Timeline], now: float
) -> dict[int, float]:
    """For each job that ran on two hosts at once: the longest such overlap, in seconds."""
    by_job: dict[int, list[Execution]] = defaultdict(list)
    for run in runs:
        by_job[run.job_id].append(run)
    longest: dict[int, float] = {}
    for job_id, executions in by_job.items():
        for index, first in enumerate(executions):
            for second in executions[index + 1 :]:
                if first.host != second.host:
                    seconds = overlap(first, second, timelines, now)
                    if seconds > 0:
                        longest[job_id] = max(longest.get(job_id, 0.0), seconds)
    return longest


def beyond(overlaps: Mapping[int, float], grace: float) -> dict[int, float]:
    return {
        job: seconds
        for job, seconds in overlaps.items()
        if seconds > grace and math.isfinite(seconds)
    }
