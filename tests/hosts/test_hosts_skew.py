"""Issue 11, skew: hosts 30 s apart fail no job, run none twice and recover a dead one in time."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_cluster import Settings, cluster
from host_jobs import (
    by_status,
    finished_within,
    holders,
    submit_many,
    wait_running_on,
    wait_taken_from,
)

OFFSETS = [-30.0, 0.0, 30.0]
SETTINGS = Settings(hosts=3, offsets=OFFSETS, log_level="WARNING")
pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(120)
def test_hosts_30_s_apart_run_1000_jobs_none_fails_none_runs_twice(tmp_path: Path) -> None:
    with cluster(tmp_path, SETTINGS) as made:
        made.start_all()
        job_ids = submit_many(made, 1000, milliseconds_range=(10, 500))
        took = finished_within(made.engine, 60)
        findings = made.findings(job_ids)
        made.stop_all()
    summary = findings.summary()
    print(f"skew -30/0/+30 s, 1000 jobs: ended in {took} s, {summary}, {findings.problems()}")
    assert took is not None, f"jobs left unfinished after 60 s: {summary}"
    assert findings.problems() == [], summary
    assert findings.statuses == {"SUCCESS": 1000}, summary
    assert findings.ran_twice == [], f"{summary}; e.g. {list(findings.reasons.items())[:3]}"


@pytest.mark.timeout(90)
def test_the_killed_fast_host_is_recovered_within_twice_dead_after(tmp_path: Path) -> None:
    bound = 2 * SETTINGS.dead_after
    with cluster(tmp_path, SETTINGS) as made:
        made.start_all()
        fast = made.host(3)
        naps = submit_many(made, 4, "nap", seconds=60, queue=fast.name)
        wait_running_on(made.engine, naps, fast)
        fast.kill()
        took = wait_taken_from(made.engine, naps, fast, timeout=bound + 4)
        after = holders(made.engine, naps)
        statuses = by_status(made.engine)
        made.stop_all()
    print(f"the +30 s host's jobs were taken from it after {took} s: {after}")
    assert took is not None, f"still held by the dead +30 s host after {bound + 4} s: {statuses}"
    assert took <= bound
