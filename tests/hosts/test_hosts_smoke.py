"""Three hosts, one database over the veth network: 300 short jobs, each run once, all SUCCESS."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from host_cluster import Settings, cluster
from host_jobs import submit_many, wait_terminal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_three_hosts_run_300_short_jobs_each_exactly_once(tmp_path: Path) -> None:
    with cluster(tmp_path, Settings(hosts=3)) as made:
        made.start_all()
        workers = made.engine.store.workers.find()
        job_ids = submit_many(made, 300, milliseconds=20)
        took = wait_terminal(made.engine, 60)
        results = Counter(made.engine.get(job_id).result for job_id in job_ids)
        findings = made.findings(job_ids)
        made.stop_all()
    hosts = Counter(row.host for row in workers if row.state == "running")
    assert hosts == {"host-1": 2, "host-2": 2, "host-3": 2}
    assert len({row.pid for row in workers}) == 6
    assert findings.problems() == []
    assert findings.statuses == {"SUCCESS": 300}
    assert set(findings.executions.values()) == {1}, findings.ran_twice
    assert set(results) <= set(hosts) and len(results) >= 2, results  # not one host doing it all
    print(f"smoke: 300 jobs in {took:.1f} s, by host {dict(results)}")
