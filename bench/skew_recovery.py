"""Issue 11's skew figure: how soon the jobs of a SIGKILLed host 30 s fast are recovered.

Three hosts of tests/hosts (network namespaces, a private PostgreSQL, libfaketime clocks at
-30 s, 0 and +30 s) run `jobengine run --workers 2` with the engine's default heartbeat (5 s)
and dead_after (20 s) while jobs of 10-500 ms keep arriving, plus naps of 1-3 s sent to the
+30 s host alone so that it always holds jobs. N times: wait until the +30 s host runs jobs,
wait a random part of a heartbeat interval, SIGKILL its whole tree, time each job it held
until the others take it (retry, release or reap), then restart it and wait for its workers
(restarted only after the recovery, so that its own start-up recovery is not what is timed).

Times are the test process's true clock (it is not skewed): the kill is stamped just before
the host is frozen, each recovery when a poll (every 50 ms) first sees the job no longer held
by a killed worker. The recovery event's own `at` (the reaper's database clock) is shown beside.

Run alone (as root, with the tools of docs/multihost-testing.md):
    python -m bench.skew_recovery [--kills N]   # writes bench/results/skew-recovery.md
or as a suite: python -m bench skew-recovery (20 kills, written to bench/results/latest.md).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from bench.options import Options
from bench.processes import ROOT
from bench.report import RESULTS, Table, machine
from jobengine import Engine, Status
from jobengine.model import ACTIVE, Job
from jobengine.settings import Settings as WorkerSettings

sys.path.insert(0, str(ROOT / "tests"))  # the harness imports waiting and worker_processes
sys.path.insert(0, str(ROOT / "tests" / "hosts"))
from host_app import read_executions
from host_cluster import Cluster, Settings, cluster
from host_invariants import RECOVERIES, Findings
from host_jobs import host_of_workers, unfinished
from host_machine import Host
from host_requirements import require_machine

T = TypeVar("T")
TARGET = 30.0  # seconds: the +30 s host's jobs are recovered within this (issue 11)
OFFSETS = (-30.0, 0.0, 30.0)
FAST = 3  # the host whose clock is 30 s ahead
SHORT_EVERY, SHORT_BATCH = 0.5, 5  # 10 jobs of 10-500 ms a second for the whole cluster
NAPS_KEPT, NAP_SECONDS = 6, (1.0, 3.0)  # unfinished naps kept in the fast host's own queue
MAX_ATTEMPTS = 10  # so that a job hit by several kills in a row is not failed by the schedule
RECOVERY_DEADLINE = 3 * TARGET
DRAIN_DEADLINE = 180.0
POLL = 0.05
DEFAULTS = WorkerSettings()
HELD = tuple(ACTIVE)  # QUEUED, RUNNING, TO_CANCEL: a job some worker holds
SKIPPED = "Skew recovery: SIGKILL of the +30 s host (skipped)"


@dataclass
class Kill:
    """One SIGKILL of the fast host and what followed."""

    number: int
    held: dict[int, Job]  # job -> the job as its killed worker held it
    observed: dict[int, float] = field(default_factory=dict)  # job -> s, the test's clock
    stamped: dict[int, float] = field(default_factory=dict)  # job -> s, the event's `at`
    reapers: set[str] = field(default_factory=set)  # hosts whose workers recovered them
    restart: float = 0.0  # seconds until the restarted host's workers registered

    def worst(self) -> float:
        """The longest recovery of this kill; infinite if a job was not recovered at all."""
        if len(self.observed) < len(self.held):
            return float("inf")
        return max(self.observed.values(), default=0.0)


class Feeder:
    """Keeps jobs arriving: short ones for every host, naps for the fast host alone."""

    def __init__(self, engine: Engine, fast_queue: str) -> None:
        self.engine, self.fast_queue = engine, fast_queue
        self.ids: list[int] = []
        self.due = 0.0

    def tick(self) -> None:
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + SHORT_EVERY
        shorts = [{"milliseconds": random.randint(10, 500)} for _ in range(SHORT_BATCH)]
        self.ids += self.engine.submit_many("short", shorts, max_attempts=MAX_ATTEMPTS)
        waiting = self.engine.list([Status.PENDING, *ACTIVE], "nap", self.fast_queue, NAPS_KEPT)
        naps = [{"seconds": random.uniform(*NAP_SECONDS)} for _ in range(NAPS_KEPT - len(waiting))]
        if naps:
            self.ids += self.engine.submit_many(
                "nap", naps, queue=self.fast_queue, max_attempts=MAX_ATTEMPTS
            )


def until(feeder: Feeder, condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `condition` (feeding jobs meanwhile) until it is truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        feeder.tick()
        time.sleep(POLL)
    return value


def held_by(made: Cluster, host: Host) -> dict[int, Job]:
    """The active jobs of every registered worker of the host (a killed host's rows remain
    until a peer declares them dead: its jobs are then no longer theirs)."""
    workers = [row.id for row in made.engine.store.workers.find() if row.host == host.name]
    jobs = made.engine.store.jobs
    return {job.id: job for worker in workers for job in jobs.owned(worker, HELD)}


def check_peers(made: Cluster) -> None:
    for host in made.hosts:
        if host.number != FAST and (host.supervisor is None or host.supervisor.poll() is not None):
            raise RuntimeError(made.trouble(host))


def kill_once(made: Cluster, feeder: Feeder, number: int, heartbeat: float) -> Kill:
    """Wait until the fast host runs jobs, kill it at a random phase of its heartbeat, time
    the recovery of what it held, restart it."""
    fast = made.host(FAST)

    def running() -> bool:
        return sum(job.status is Status.RUNNING for job in held_by(made, fast).values()) >= 2

    until(feeder, running, 60, f"{fast.name} to run jobs")
    phase = time.monotonic() + random.uniform(0, heartbeat)
    until(feeder, lambda: time.monotonic() >= phase and running(), 30, f"{fast.name} to be busy")
    check_peers(made)
    killed = time.time()
    fast.kill()
    kill = Kill(number, held_by(made, fast))
    watch_recovery(made, feeder, kill, killed)
    read_events(made, kill, killed)
    started = time.monotonic()
    made.start(fast)
    wait_live(made, fast)
    kill.restart = time.monotonic() - started
    return kill


def wait_live(made: Cluster, host: Host, timeout: float = 60) -> None:
    """Wait until the restarted host's workers registered; else say what the database shows."""
    try:
        made.wait_registered(host, timeout)
    except AssertionError as error:
        rows = [(row.id, row.state) for row in made.engine.store.workers.find(True)]
        mine = [row for row in rows if host.name in row[0]]
        members = host.members()
        trouble = made.trouble(host)
        raise RuntimeError(f"{error}; rows {mine}, processes {members}; {trouble}") from None


def watch_recovery(made: Cluster, feeder: Feeder, kill: Kill, killed: float) -> None:
    """Note when each held job is first seen no longer held by its killed worker."""
    jobs = made.engine.store.jobs
    workers = {job.worker for job in kill.held.values() if job.worker}
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while len(kill.observed) < len(kill.held) and time.monotonic() < deadline:
        still = {job.id for worker in workers for job in jobs.owned(worker, HELD)}
        seen = time.time()
        for job_id in kill.held.keys() - still - kill.observed.keys():
            kill.observed[job_id] = seen - killed
        feeder.tick()
        time.sleep(POLL)


def read_events(made: Cluster, kill: Kill, killed: float) -> None:
    """Each job's recovery event (of the attempt the kill cut short): its `at`, its actor."""
    hosts = host_of_workers(made.engine)
    for job_id, job in kill.held.items():
        events = made.engine.store.jobs.events(job_id)
        moves = [e for e in events if e.verb in RECOVERIES and e.attempt == job.attempt]
        if moves:
            kill.stamped[job_id] = moves[0].at - killed
            kill.reapers.add(hosts.get(moves[0].actor, moves[0].actor))


def drain(made: Cluster, feeder: Feeder) -> float | None:
    """Stop feeding and wait for every job to end; seconds it took, None past the deadline."""
    started = time.monotonic()
    deadline = started + DRAIN_DEADLINE
    while unfinished(made.engine) and time.monotonic() < deadline:
        time.sleep(0.2)
    return None if unfinished(made.engine) else time.monotonic() - started


def percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def completed_twice(made: Cluster, job_ids: list[int]) -> list[int]:
    """Jobs whose function ran to its end more than once (a kill cuts an execution short, so
    reruns after kills are not counted: only a job run twice by living workers is)."""
    wanted = set(job_ids)
    runs = read_executions(made.runs)
    ended = Counter(run.job_id for run in runs if run.end is not None and run.job_id in wanted)
    return sorted(job for job, count in ended.items() if count > 1)


@dataclass
class Outcome:
    """A whole run: the kills, and what the database and execution files show at the end."""

    kills: list[Kill]
    findings: Findings
    doubles: list[int]
    drained: float | None
    jobs: int
    settings: Settings
    seconds: float = 0.0


def measure(kills: int, heartbeat: float, dead_after: float) -> Outcome:
    """Start the three hosts, kill the fast one `kills` times, drain, inspect, tear down."""
    started = time.monotonic()
    settings = Settings(3, 2, list(OFFSETS), heartbeat, dead_after, log_level="WARNING")
    with (
        tempfile.TemporaryDirectory(prefix="skew-recovery-") as folder,
        cluster(Path(folder), settings) as made,
    ):
        made.start_all()
        feeder = Feeder(made.engine, made.host(FAST).name)
        results = []
        for number in range(1, kills + 1):
            results.append(kill_once(made, feeder, number, heartbeat))
            print(f"  kill {number}: {row_text(results[-1])}", flush=True)
        drained = drain(made, feeder)
        findings = made.findings(feeder.ids)
        doubles = completed_twice(made, feeder.ids)
        made.stop_all()
    outcome = Outcome(results, findings, doubles, drained, len(feeder.ids), settings)
    outcome.seconds = time.monotonic() - started
    return outcome


def row_text(kill: Kill) -> str:
    stamped = max(kill.stamped.values(), default=float("nan"))
    return (
        f"{len(kill.held)} jobs held, recovered after {kill.worst():.2f} s at most "
        f"(event stamps {stamped:.2f} s) by {', '.join(sorted(kill.reapers)) or 'nobody'}; "
        f"restarted in {kill.restart:.1f} s"
    )


def verdict(seconds: float) -> str:
    return "yes" if seconds <= TARGET else "NO"


def table(outcome: Outcome) -> Table:
    """Per kill, then over all jobs, then over the per-kill maxima (the issue's figure)."""
    made = outcome.settings
    result = Table(
        f"Skew recovery: SIGKILL of the +30 s host of 3 (-30/0/+30 s), heartbeat "
        f"{made.heartbeat_interval:g} s, dead after {made.dead_after:g} s",
        ["kill", "jobs", "p50 s", "p95 s", "p99 s", "max s", "max by event s", "by", "<= 30 s"],
    )
    for kill in outcome.kills:
        add_kill(result, kill)
    every = [s for kill in outcome.kills for s in kill.observed.values()]
    worsts = [kill.worst() for kill in outcome.kills]
    stamps = [s for kill in outcome.kills for s in kill.stamped.values()]
    for label, values in (("all jobs", every), ("per-kill max", worsts)):
        quantiles = [percentile(values, p) for p in (50, 95, 99)]
        result.add(
            label, len(values), *quantiles, max(values), max(stamps), "", verdict(max(values))
        )
    notes(result, outcome)
    return result


def add_kill(result: Table, kill: Kill) -> None:
    quantiles = [percentile(list(kill.observed.values()), p) for p in (50, 95, 99)]
    stamped = max(kill.stamped.values(), default=float("nan"))
    by = ", ".join(sorted(kill.reapers))
    result.add(
        kill.number, len(kill.held), *quantiles, kill.worst(), stamped, by, verdict(kill.worst())
    )


def notes(result: Table, outcome: Outcome) -> None:
    findings, made = outcome.findings, outcome.settings
    result.notes += [
        f"{len(outcome.kills)} kills; {outcome.jobs:,} jobs submitted (short 10-500 ms to every "
        f"host, naps {NAP_SECONDS[0]:g}-{NAP_SECONDS[1]:g} s to the +30 s host), "
        f"max_attempts {MAX_ATTEMPTS}; run took {outcome.seconds:.0f} s.",
        f"Thresholds: the engine defaults heartbeat {DEFAULTS.heartbeat_interval:g} s and dead "
        f"after {DEFAULTS.dead_after:g} s"
        + (
            " (used)"
            if made.dead_after == DEFAULTS.dead_after
            else f" (overridden: used {made.heartbeat_interval:g} s / {made.dead_after:g} s)"
        )
        + f"; the harness's poll {made.poll_interval:g} s, 2 workers x concurrency "
        f"{made.concurrency} per host, restart delay 0.2-1 s.",
        "Seconds: the test process's true clock, from just before the host is frozen and "
        f"killed until a poll (every {POLL * 1000:.0f} ms) sees the job no longer held by its "
        "killed worker; 'max by event' is the recovery event's own `at` minus the kill.",
        f"End state: {dict(findings.statuses)}; failed {findings.statuses.get('FAILURE', 0)}; "
        f"not terminal {len(findings.not_terminal)}"
        + (
            f" after {outcome.drained:.0f} s of draining"
            if outcome.drained is not None
            else f" after the {DRAIN_DEADLINE:.0f} s drain deadline"
        ),
        f"Ran on two hosts at once: {len(findings.concurrent)} (longest "
        f"{max(findings.concurrent.values(), default=0.0):.2f} s); ran to its end twice: "
        f"{len(outcome.doubles)}; ran more than once (reruns after a kill included): "
        f"{len(findings.ran_twice)}.",
        f"Invariants (host_invariants): {'; '.join(findings.problems()) or 'all hold'}.",
    ]


def skipped(message: str) -> Table:
    result = Table(SKIPPED, ["skipped"])
    result.add(message)
    return result


def run(
    options: Options,
    kills: int = 20,
    heartbeat: float | None = None,
    dead_after: float | None = None,
) -> Table:
    """The suite's entry point: skipped with a message when the machine cannot run hosts."""
    del options  # sizes of the other benchmarks
    try:
        require_machine()
    except (pytest.skip.Exception, pytest.fail.Exception) as problem:
        return skipped(str(problem))
    outcome = measure(
        kills,
        DEFAULTS.heartbeat_interval if heartbeat is None else heartbeat,
        DEFAULTS.dead_after if dead_after is None else dead_after,
    )
    return table(outcome)


def write(result: Table, command: str, started: float, machine_at_start: str) -> Path:
    target = RESULTS / "skew-recovery.md"
    lines = [
        f"# {result.title}",
        "",
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}",
        f"- command: `{command}`",
        f"- machine at the start: {machine_at_start}",
        f"- the run took {time.time() - started:.0f} s",
        "",
        result.markdown(),
    ]
    RESULTS.mkdir(exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.skew_recovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the +30 s host")
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help=f"seconds (default: the engine's {DEFAULTS.heartbeat_interval:g})",
    )
    parser.add_argument(
        "--dead-after",
        type=float,
        default=None,
        help=f"seconds (default: the engine's {DEFAULTS.dead_after:g})",
    )
    arguments = parser.parse_args(argv)
    if arguments.kills < 1:
        parser.error(f"--kills must be 1 or more, not {arguments.kills}")
    started, machine_at_start = time.time(), machine()
    print(f"machine: {machine_at_start}", flush=True)
    try:
        result = run(Options(), arguments.kills, arguments.heartbeat_interval, arguments.dead_after)
    except RuntimeError as error:
        sys.exit(f"skew-recovery failed, nothing written: {error}")
    print()
    print(result.text())
    if result.title == SKIPPED:
        sys.exit(f"skew-recovery: nothing measured, {result.rows[0][0]}")
    command = " ".join(["python -m bench.skew_recovery", *(argv or sys.argv[1:])])
    print(f"\nwritten to {write(result, command, started, machine_at_start)}")


if __name__ == "__main__":
    main()
