"""Issue 11, fencing: a host cut off or paused past dead_after stops the jobs others take over.

The host is cut off from the database, or paused, for 2 x dead_after while it runs long jobs.
The others take its jobs once it is declared dead; it stops those jobs itself (before their new
attempts start, or at once when it resumes), records nothing late, and works again afterwards.
No job runs on two hosts at once beyond the grace."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from host_cluster import Cluster, Settings, cluster
from host_invariants import Findings
from host_jobs import finished_within, submit_many, wait_running_on, wait_taken_from
from host_machine import Host

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LONG = 12.0  # the long jobs: they would outlast the outage by far without fencing
SETTINGS = Settings(hosts=3, log_level="INFO")
OUTAGE = 2 * SETTINGS.dead_after
GRACE = 0.5  # a fenced worker stops a job that sleeps in ctx.sleep at once
# The pause passes on today's engine already: at its first beat after SIGCONT a worker sees its
# jobs were taken and stops them (the ladder's "taken" step). It guards that behaviour.


def occupy_first_host(made: Cluster) -> list[int]:
    """Host-1 alone takes 4 long jobs; then the other hosts start, ready to take them over."""
    first = made.host(1)
    made.start(first)
    made.wait_registered(first)
    naps = submit_many(made, 4, "nap", seconds=LONG)
    wait_running_on(made.engine, naps, first)
    for host in made.hosts[1:]:
        made.start(host)
    for host in made.hosts[1:]:
        made.wait_registered(host)
    return naps


def outage(made: Cluster, begin: Callable[[], None], end: Callable[[], None]) -> dict[str, object]:
    """Run the scenario around an outage of host-1 lasting OUTAGE seconds; what was seen."""
    naps = occupy_first_host(made)
    isolated = made.host(1)
    begin()
    started = time.monotonic()
    taken = wait_taken_from(made.engine, naps, isolated, OUTAGE)
    time.sleep(max(0.0, started + OUTAGE - time.monotonic()))  # the outage itself lasts this
    end()
    ended = finished_within(made.engine, LONG + 3 * SETTINGS.dead_after)
    again = submit_many(made, 10, "short", queue=isolated.name, milliseconds=20)
    works = finished_within(made.engine, 30)
    results = {made.engine.get(job).result for job in again}
    findings = made.findings([*naps, *again], grace=GRACE)
    made.stop_all()
    return {"taken": taken, "ended": ended, "works": works, "results": results, "found": findings}


def check(seen: dict[str, object], isolated: Host) -> None:
    findings = seen["found"]
    assert isinstance(findings, Findings)
    overlaps = {job: f"{seconds:.2f} s" for job, seconds in findings.concurrent.items()}
    print(f"{seen}: {findings.summary()}, overlaps {overlaps}")
    assert seen["taken"] is not None, f"nobody took {isolated.name}'s jobs within {OUTAGE} s"
    assert findings.concurrent_beyond_grace == {}, f"ran on two hosts at once: {overlaps}"
    assert findings.problems() == [], findings.problems()
    assert seen["ended"] is not None and seen["works"] is not None, findings.summary()
    assert findings.statuses == {"SUCCESS": 14}, findings.summary()
    assert seen["results"] == {isolated.name}, "the isolated host did not work again"


def test_a_host_cut_off_for_twice_dead_after_stops_its_jobs_itself(tmp_path: Path) -> None:
    with cluster(tmp_path, SETTINGS) as made:
        seen = outage(made, lambda: made.network.cut(1), lambda: made.network.restore(1))
    check(seen, made.host(1))


def test_a_host_paused_for_twice_dead_after_stops_its_jobs_when_it_resumes(tmp_path: Path) -> None:
    with cluster(tmp_path, SETTINGS) as made:
        host = made.host(1)
        seen = outage(made, lambda: made.pause_cleanly(host), host.resume)
    check(seen, made.host(1))
