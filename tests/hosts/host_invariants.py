"""The invariants a multi-host run must keep, read from the database and the execution files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from host_app import Execution, beyond, concurrent_runs
from host_machine import Timeline
from worker_processes import events_by_job

from jobengine import Engine, Status
from jobengine.model import TERMINAL

WAITING = Status.PENDING  # waiting to be claimed (a retry's backoff, or not yet claimed)
RECOVERIES = ("release", "retry", "reap")  # a job taken from its worker
HOLDING = ("claim", "start")  # the moves by which a worker comes to hold a job


@dataclass
class Findings:
    """What the database and the execution files show about a set of jobs."""

    jobs: int
    statuses: Counter[str]
    not_terminal: dict[int, str] = field(default_factory=dict)  # job -> status
    terminal_events: dict[int, int] = field(default_factory=dict)  # jobs with != 1
    events_after_terminal: dict[int, list[str]] = field(default_factory=dict)
    executions: Counter[int] = field(default_factory=Counter)
    concurrent: dict[int, float] = field(default_factory=dict)  # job -> seconds on two hosts
    grace: float = 0.0
    reasons: dict[int, list[str]] = field(default_factory=dict)  # job -> its recovery reasons
    late: dict[int, list[str]] = field(default_factory=dict)  # job -> moves its old holder made

    @property
    def ran_twice(self) -> list[int]:
        return sorted(job for job, count in self.executions.items() if count > 1)

    @property
    def concurrent_beyond_grace(self) -> dict[int, float]:
        return beyond(self.concurrent, self.grace)

    def problems(self, allow_waiting: bool = False) -> list[str]:
        """Each broken invariant as a sentence (empty when all hold)."""
        stuck = {
            job: status
            for job, status in self.not_terminal.items()
            if not (allow_waiting and status == WAITING)
        }
        found = []
        if stuck:
            found.append(f"{len(stuck)} jobs neither terminal nor waiting: {_some(stuck)}")
        if self.terminal_events:
            found.append(f"jobs without exactly one terminal event: {_some(self.terminal_events)}")
        if self.events_after_terminal:
            found.append(f"events after a terminal one: {_some(self.events_after_terminal)}")
        if self.late:
            found.append(f"moves recorded by a worker after its job was taken: {_some(self.late)}")
        if self.concurrent_beyond_grace:
            found.append(
                f"{len(self.concurrent_beyond_grace)} jobs ran on two hosts at once beyond "
                f"{self.grace} s: {_some(self.concurrent_beyond_grace)}"
            )
        return found

    def summary(self) -> dict[str, object]:
        return {
            "jobs": self.jobs,
            "statuses": dict(self.statuses),
            "ran more than once": len(self.ran_twice),
            "on two hosts at once": len(self.concurrent),
            "beyond the grace": len(self.concurrent_beyond_grace),
            "late moves": len(self.late),
            "longest overlap": f"{max(self.concurrent.values(), default=0.0):.2f} s",
        }


def _some(items: Mapping[int, object], count: int = 5) -> str:
    shown = ", ".join(f"{key}: {value}" for key, value in list(items.items())[:count])
    return shown + (" ..." if len(items) > count else "")


def inspect_jobs(
    engine: Engine,
    job_ids: Sequence[int],
    runs: Sequence[Execution],
    timelines: Mapping[str, Timeline],
    now: float,
    grace: float = 0.0,
) -> Findings:
    """Read every job, every event and every execution; gather what breaks an invariant."""
    wanted = set(job_ids)
    jobs = {job.id: job for job in engine.list(limit=len(wanted) + 10_000) if job.id in wanted}
    statuses = Counter(str(job.status) for job in jobs.values())
    findings = Findings(len(wanted), statuses, grace=grace)
    findings.not_terminal = {
        job_id: str(job.status) for job_id, job in jobs.items() if job.status not in TERMINAL
    }
    findings.not_terminal.update({job_id: "missing" for job_id in wanted - set(jobs)})
    events = events_by_job(engine)
    for job_id in sorted(wanted):
        _check_events(findings, job_id, events.get(job_id, []))
    mine = [run for run in runs if run.job_id in wanted]
    findings.executions = Counter(run.job_id for run in mine)
    findings.concurrent = concurrent_runs(mine, timelines, now)
    return findings


def _check_events(findings: Findings, job_id: int, rows: list[dict[str, object]]) -> None:
    terminal = [index for index, row in enumerate(rows) if row["to_status"] in TERMINAL]
    if len(terminal) != 1 and (terminal or job_id not in findings.not_terminal):
        findings.terminal_events[job_id] = len(terminal)
    if terminal and terminal[0] < len(rows) - 1:
        later = rows[terminal[0] + 1 :]
        findings.events_after_terminal[job_id] = [
            f"{row['verb']}->{row['to_status']}" for row in later
        ]
    recoveries = [str(row["reason"]) for row in rows if row["verb"] in RECOVERIES]
    if recoveries:
        findings.reasons[job_id] = recoveries
    late = late_moves(rows)
    if late:
        findings.late[job_id] = late


def late_moves(rows: list[dict[str, object]]) -> list[str]:
    """Moves a worker recorded on a job after it was taken from it, before anyone claimed the
    job again (after a new claim, the old holder's moves are refused by the guard anyway).

    Notes that change no status (the cancel ladder's steps, such as the worker stopping a job
    it lost) are not moves: a fenced worker is expected to record them."""
    holder: object = None
    taken_from: object = None
    late = []
    for row in rows:
        actor, verb = row["actor"], row["verb"]
        if verb in HOLDING:
            holder, taken_from = actor, None
        elif verb in RECOVERIES and actor != holder:
            taken_from = holder
        elif actor == taken_from and row["from_status"] != row["to_status"]:
            late.append(f"{verb} by {actor} (attempt {row['attempt']})")
    return late
