"""Issue 11, clock steps: a host's clock stepped 30 s while 4 jobs run fails none of them.

The step goes forward or back (as NTP, `chronyc makestep` or `date -s` do): no job fails or runs
twice, and a worker killed after the step is still recovered in time without a living one being
taken for dead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from host_cluster import Cluster, Settings, cluster
from host_jobs import (
    active_holders,
    by_status,
    finished_within,
    submit_from_host,
    submit_many,
    wait_running_on,
)
from host_jobs import wait_taken_from_worker as taken_from_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

NAP = 4.0


def settings(backend: str) -> Settings:
    """PostgreSQL: the stepped host and a peer whose clock is true; SQLite: one host. Two jobs
    per worker, so that 4 jobs keep both workers of the stepped host busy."""
    hosts = 2 if backend == "postgresql" else 1
    return Settings(
        hosts=hosts, offsets=[0.0] * hosts, backend=backend, concurrency=2, log_level="WARNING"
    )


def run_through_a_step(made: Cluster, step: float) -> tuple[float | None, list[int]]:
    """4 jobs on host-1, its clock stepped once they run: (seconds they took, their ids)."""
    stepped = made.host(1)
    naps = submit_many(made, 4, "nap", seconds=NAP, queue=stepped.name)
    wait_running_on(made.engine, naps, stepped)
    assert stepped.clock is not None
    stepped.clock.step(step)
    return finished_within(made.engine, NAP + 3 * made.settings.dead_after), naps


def kill_a_busy_worker(made: Cluster) -> tuple[float | None, list[int], str, list[int]]:
    """4 more jobs on host-1's two workers; SIGKILL one worker process alone: (seconds until
    its jobs were taken from it, the 4 jobs, the killed worker's id, the survivor's jobs)."""
    host = made.host(1)  # submitted there: on one host, the application's clock steps too
    naps = submit_from_host(made, host, 4, "nap", host.name, seconds=NAP)
    wait_running_on(made.engine, naps, host)
    holding = active_holders(made.engine, naps)
    workers = Counter(holding.values())
    assert len(workers) == 2, f"the 4 jobs did not go to both workers: {workers}"
    (victim, _), (survivor, _) = workers.most_common()
    pid = next(row.pid for row in made.workers_of(host) if row.id == victim)
    host.kill_process(pid)
    bound = 2 * made.settings.dead_after
    taken = taken_from_worker(made.engine, naps, victim, bound + 4)
    return taken, naps, victim, [job for job, worker in holding.items() if worker == survivor]


@pytest.mark.parametrize(
    ("backend", "step"),
    [
        pytest.param("postgresql", 30.0, id="postgresql-forward"),
        pytest.param("postgresql", -30.0, id="postgresql-back"),
        pytest.param("sqlite", 30.0, id="sqlite-forward"),
        pytest.param("sqlite", -30.0, id="sqlite-back"),
    ],
)
def test_a_30_s_clock_step_fails_no_job_and_a_killed_worker_is_recovered(
    backend: str, step: float, tmp_path: Path
) -> None:
    with cluster(tmp_path, settings(backend)) as made:
        made.start_all()
        took, first = run_through_a_step(made, step)
        stepped = made.findings(first)
        assert took is not None, (
            f"jobs unfinished after the step: {by_status(made.engine)}; {stepped.reasons}"
        )
        taken, second, victim, survivor_jobs = kill_a_busy_worker(made)
        finished_within(made.engine, NAP + 3 * made.settings.dead_after)
        after_kill = made.findings(second)
        made.stop_all()
    print(
        f"{backend}, step {step:+.0f} s: {stepped.summary()}; killed worker's jobs taken after "
        f"{taken} s; after the kill {after_kill.summary()}"
    )
    assert stepped.problems() == [] and stepped.statuses == {"SUCCESS": 4}, stepped.summary()
    assert stepped.ran_twice == [], stepped.reasons
    assert taken is not None and taken <= 2 * made.settings.dead_after, f"{victim}: {taken} s"
    assert after_kill.problems() == [] and after_kill.statuses == {"SUCCESS": 4}
    lost = [job for job in survivor_jobs if after_kill.executions[job] != 1]
    assert lost == [], f"jobs taken from the living worker: {after_kill.reasons}"


def test_a_worker_started_on_a_slow_host_takes_no_living_sibling_for_dead(
    tmp_path: Path,
) -> None:
    """The pid-reuse check compares the kernel's start time of a process with the wall time
    the worker stored: on a host 30 s slow, a restarted worker must still see its sibling live."""
    slow = Settings(hosts=1, offsets=[-30.0], backend="sqlite", concurrency=2, log_level="INFO")
    with cluster(tmp_path, slow) as made:
        made.start_all()
        taken, naps, victim, survivor_jobs = kill_a_busy_worker(made)
        made.wait_registered(made.host(1))  # the supervisor's replacement has registered
        finished_within(made.engine, NAP + 3 * made.settings.dead_after)
        findings = made.findings(naps)
        made.stop_all()
    lost = {
        job: findings.reasons.get(job) for job in survivor_jobs if findings.executions[job] != 1
    }
    print(f"slow host, worker {victim} killed: {findings.summary()}; survivor's jobs lost: {lost}")
    assert taken is not None
    assert lost == {}, "the replacement took its living sibling for dead"
    assert findings.problems() == [] and findings.statuses == {"SUCCESS": 4}
