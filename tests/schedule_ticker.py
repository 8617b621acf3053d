"""Processes that tick the schedules like workers, on compressed time (for test_scheduler).

Run as a script: schedule_ticker.py URL WALL_START PERIOD TICKS FAKE_START SCHEDULES [restart]

It defines SCHEDULES schedules firing every 60 (fake) seconds, syncs them, then ticks each
fake minute FAKE_START + 60 * k in order, tick k being due at WALL_START + k * PERIOD on the
wall clock: every process started with the same arguments ticks the same fire times at the
same moment (a slow starter catches up tick by tick). A restarted process ("restart") begins
at the current tick, as a worker started now would. It prints "tick K INSERTED" per tick.
Imported, it offers what the test needs to start such processes and read what they did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jobengine import Engine, ManualClock


@dataclass(frozen=True)
class Compression:
    """The shared timetable of one run: which fake minute is due at which wall-clock time."""

    url: str
    wall_start: float
    period: float
    ticks: int
    fake_start: float
    schedules: int

    def start(self, restart: bool = False) -> subprocess.Popen[str]:
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        arguments = [self.url, self.wall_start, self.period, self.ticks, self.fake_start]
        arguments += [self.schedules, *(["restart"] if restart else [])]
        return subprocess.Popen(
            [sys.executable, __file__, *map(str, arguments)],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )

    def expected_runs(self) -> set[tuple[str, float]]:
        return {
            (f"s{number}", self.fake_start + 60 * tick)
            for number in range(self.schedules)
            for tick in range(self.ticks)
        }


def read_until_tick(process: subprocess.Popen[str], tick: int) -> str:
    """A process's output up to (and including) the line of `tick`."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(f"tick {tick} "):
            break
    return "".join(lines)


def ticks_and_inserts(output: str) -> tuple[list[int], int]:
    """(the ticks a process finished, how many jobs it inserted)."""
    lines = [line.split() for line in output.splitlines() if line.startswith("tick ")]
    return [int(parts[1]) for parts in lines], sum(int(parts[2]) for parts in lines)


def fired_runs(url: str) -> tuple[dict[tuple[str, float], int], int]:
    """How many jobs each (schedule, fire time) has, and how many submit events there are."""
    engine = Engine(url)
    try:
        with engine.store.database.transaction(write=False) as transaction:
            rows = transaction.execute(
                "SELECT schedule, fire_time, COUNT(*) AS n FROM jobs GROUP BY schedule, fire_time"
            )
            events = transaction.execute(
                "SELECT COUNT(*) AS n FROM job_events WHERE verb = 'submit'"
            )[0]["n"]
    finally:
        engine.close()
    return {(row["schedule"], row["fire_time"]): int(row["n"]) for row in rows}, int(events)


def main(plan: Compression, restart: bool) -> None:
    clock = ManualClock(plan.fake_start)
    engine = Engine(plan.url, clock=clock)
    # Compressed time magnifies every stall: a 0.6 s pause of a loaded test machine is three
    # fake minutes, which a restarted process ticking "now" would take for an outage and
    # skip. A real worker's grace is two tick intervals of 60 s; here it is 50 intervals.
    engine.schedules.grace = 50 * 60
    engine.job(name="noop")(lambda: None)
    for number in range(plan.schedules):
        engine.schedule(f"s{number}", "noop", every=60)
    engine.schedules.sync()
    done = int((time.time() - plan.wall_start) // plan.period) - 1 if restart else -1
    while done < plan.ticks - 1:
        due = min(int((time.time() - plan.wall_start) // plan.period), plan.ticks - 1)
        for tick in range(done + 1, due + 1):
            now = plan.fake_start + 60 * tick
            clock.set(now)
            print(f"tick {tick} {len(engine.schedules.tick(now))}", flush=True)
            done = tick
        time.sleep(plan.period / 20)
    engine.close()


def parse(arguments: Iterable[str]) -> Compression:
    url, wall_start, period, ticks, fake_start, schedules = arguments
    return Compression(
        url, float(wall_start), float(period), int(ticks), float(fake_start), int(schedules)
    )


if __name__ == "__main__":
    main(parse(sys.argv[1:7]), restart=sys.argv[7:] == ["restart"])
