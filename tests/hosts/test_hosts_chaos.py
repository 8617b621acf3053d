"""Chaos on three hosts: the busiest host SIGKILLed every 2.5 s and restarted loses no job.

Jobs keep arriving meanwhile: none is lost, none left non-terminal, none ran on two hosts at
once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from host_cluster import Cluster, Settings, cluster
from host_jobs import host_of_workers, submit_many, wait_terminal
from host_machine import Host

from jobengine import Status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

CHAOS_SECONDS = 15.0
KILL_EVERY = 2.5
REBOOT_SECONDS = 0.5  # between a host's death and its `jobengine run` starting again
SUBMIT_EVERY = 0.5
BATCH = 40


def busiest(made: Cluster, down: dict[int, float], last: Host | None) -> Host:
    """The host (up, and not the last victim if another will do) running the most jobs now."""
    hosts = host_of_workers(made.engine)
    running = Counter(
        hosts.get(job.worker or "") for job in made.engine.list(Status.RUNNING, limit=500)
    )
    candidates = [host for host in made.hosts if host.number not in down and host is not last]
    candidates = candidates or [host for host in made.hosts if host.number not in down]
    return max(candidates, key=lambda host: running[host.name])


def unleash(made: Cluster) -> tuple[list[int], list[str]]:
    """Submit BATCH jobs every SUBMIT_EVERY s and kill the busiest host every KILL_EVERY s, for
    CHAOS_SECONDS; each killed host comes back after REBOOT_SECONDS. (job ids, hosts killed)"""
    job_ids: list[int] = []
    killed: list[str] = []
    victim: Host | None = None
    start = time.monotonic()
    next_kill, next_submit = start + KILL_EVERY / 2, start
    down: dict[int, float] = {}  # host number -> when it comes back
    while (now := time.monotonic()) < start + CHAOS_SECONDS:
        if now >= next_submit:
            job_ids += submit_many(made, BATCH, milliseconds_range=(50, 200))
            next_submit += SUBMIT_EVERY
        if now >= next_kill:
            victim = busiest(made, down, victim)
            victim.kill()
            killed.append(victim.name)
            down[victim.number] = now + REBOOT_SECONDS
            next_kill += KILL_EVERY
        for number, back in list(down.items()):
            if now >= back:
                made.start(made.host(number))
                del down[number]
        time.sleep(0.02)
    for number in down:
        made.start(made.host(number))
    return job_ids, killed


def test_hosts_killed_every_few_seconds_lose_no_job(tmp_path: Path) -> None:
    with cluster(tmp_path, Settings(hosts=3, concurrency=4, log_level="WARNING")) as made:
        made.start_all()
        job_ids, killed = unleash(made)
        took = wait_terminal(made.engine, 90)
        findings = made.findings(job_ids)
        made.stop_all()
    recovered = [job for job in findings.reasons if findings.executions[job] > 1]
    print(
        f"chaos on 3 hosts: {len(killed)} kills, drained {took:.1f} s after the chaos, "
        f"{findings.summary()}, {len(recovered)} recovered and run again"
    )
    assert findings.problems() == []
    assert findings.not_terminal == {}
    assert len(killed) >= 5 and len(set(killed)) >= 2, killed
    assert recovered, "no kill hit a job in flight"
    unexplained = [job for job in findings.ran_twice if not findings.reasons.get(job)]
    assert unexplained == [], "jobs ran twice without a recovery event"
