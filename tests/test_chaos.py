"""Chaos: workers killed with SIGKILL every 2 s while thousands of short jobs run; none is lost."""

from __future__ import annotations

import contextlib
import random
import re
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from private_postgres import private_server
from waiting import wait_for
from worker_processes import ACTIVE, App, events_by_job, registered_children, worker_children

from jobengine import DatabaseUnavailable, Status
from jobengine.model import TERMINAL
from jobengine.store import NewJob

KILL_EVERY = 2.0
DEAD_WORKER = re.compile(r"worker (\S+) stopped heartbeating at")
RECOVERY_VERBS = ("release", "retry", "reap", "cancel")


@dataclass
class Chaos:
    """What the test did: when it killed which process."""

    killed: dict[int, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0


def submit_short_jobs(app: App, count: int) -> list[int]:
    """`count` jobs of 1-50 ms, inserted in one transaction."""
    job_type = app.engine.registry.get("short")
    now = app.engine.clock.now()
    ids = []
    with app.engine.store.database.transaction() as transaction:
        for _ in range(count):
            arguments = job_type.encode_arguments({"milliseconds": random.randint(1, 50)})
            new_job = NewJob("short", arguments, "default", 0, now, job_type.max_attempts)
            job_id = app.engine.store.jobs.insert(transaction, new_job, now, "chaos")
            assert job_id is not None
            ids.append(job_id)
    return ids


def unfinished(app: App) -> int:
    counts = app.engine.store.jobs.count_by_status()
    return sum(n for status, n in counts.items() if status not in TERMINAL)


def unleash(
    app: App,
    supervisor: subprocess.Popen[bytes],
    deadline: float,
    restart: Callable[[], None] | None = None,
) -> Chaos:
    """Every KILL_EVERY seconds, SIGKILL the oldest worker, until every job has ended; with
    `restart`, call it once, 3 s in (the database server restarted under everything)."""
    chaos = Chaos()
    next_kill = time.monotonic() + KILL_EVERY / 2  # the first while the first jobs run
    restart_at = time.monotonic() + 3.0

    def still_running() -> bool:
        with contextlib.suppress(DatabaseUnavailable):  # the server may be restarting
            return unfinished(app) > 0
        return True

    while still_running():
        assert time.monotonic() < deadline, f"{unfinished(app)} jobs unfinished at the deadline"
        if restart is not None and time.monotonic() >= restart_at:
            restart()
            restart = None
        if time.monotonic() >= next_kill:
            next_kill += KILL_EVERY
            victims = [c for c in worker_children(supervisor) if time.time() - c.create_time() > 1]
            if victims:
                chaos.killed[victims[0].pid] = time.time()
                victims[0].send_signal(signal.SIGKILL)
        time.sleep(0.05)
    chaos.duration = time.monotonic() - chaos.started
    return chaos


def recovery_path(event: dict[str, object]) -> str:
    """Who noticed and how: 'supervisor exit' (it saw the process end), '<who> gone' (a pid
    found gone at a start), '<who> silence' (no heartbeat for dead-after, or a job a dead
    worker's last transaction committed after it was declared dead)."""
    who = "supervisor" if str(event["actor"]).startswith("supervisor") else "worker"
    reason = str(event["reason"])
    if "(its process was killed" in reason or "(its process exited" in reason:
        return f"{who} exit {event['verb']}"
    if "is gone)" in reason:
        return f"{who} gone {event['verb']}"
    return f"{who} silence {event['verb']}"


def check(app: App, job_ids: list[int], chaos: Chaos) -> dict[str, object]:
    """Every job ended once; only jobs in flight on a killed worker ran twice, each recovered."""
    events = events_by_job(app.engine)
    statuses = Counter(app.engine.get(job_id).status for job_id in job_ids)
    assert sum(statuses.values()) == len(job_ids)
    assert not app.engine.list(status=ACTIVE)
    assert set(statuses) <= TERMINAL
    executions = app.executions()
    latencies: list[float] = []
    recovered_by: Counter[str] = Counter()
    for job_id in job_ids:
        rows = events[job_id]
        assert sum(1 for e in rows if e["to_status"] in TERMINAL) == 1, rows
        check_recoveries(rows, chaos, latencies, recovered_by)
        if executions[job_id] > 1:
            starts = {e["attempt"]: e["actor"] for e in rows if e["verb"] == "start"}
            last = max(starts)  # type: ignore[type-var]
            lost = [worker for attempt, worker in starts.items() if attempt != last]
            assert all(int(str(w).split(":")[1]) in chaos.killed for w in lost), rows
            assert any(DEAD_WORKER.search(str(e["reason"])) for e in rows), rows
        if statuses and app.engine.get(job_id).status is Status.SUCCESS:
            assert executions[job_id] >= 1
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "jobs": len(job_ids),
        "kills": len(chaos.killed),
        "duplicates": sum(1 for job_id in job_ids if executions[job_id] > 1),
        "recovered": len(latencies),
        "recovery p50": f"{statistics.median(latencies) if latencies else 0:.3f} s",
        "recovery p99": f"{quantiles[98]:.3f} s",
        "duration": f"{chaos.duration:.1f} s",
        "recovered by": dict(recovered_by),
        "statuses": dict(statuses),
    }


def check_recoveries(
    rows: list[dict[str, object]],
    chaos: Chaos,
    latencies: list[float],
    recovered_by: Counter[str],
) -> None:
    """Each recovery names a worker the test killed; note how long after the kill it came."""
    for event in rows:
        found = DEAD_WORKER.search(str(event["reason"]))
        if event["verb"] in RECOVERY_VERBS and found:
            pid = int(found.group(1).split(":")[1])
            assert pid in chaos.killed, f"worker {found.group(1)} was never killed: {event}"
            latencies.append(float(event["at"]) - chaos.killed[pid])  # type: ignore[arg-type]
            recovered_by[recovery_path(event)] += 1


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("backend", "workers", "count"), [("postgresql", 4, 5_000), ("sqlite", 2, 1_000)]
)
def test_workers_killed_every_two_seconds_lose_no_job(
    backend: str, workers: int, count: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue("postgres_url" if backend == "postgresql" else "sqlite_url"))
    app = App(tmp_path, url)
    try:
        supervisor = app.start(
            "run",
            "--workers",
            str(workers),
            "--poll-interval",
            "0.1",
            "--heartbeat-interval",
            "1",
            "--dead-after",
            "4",
            "--restart-delay",
            "0.2",
            "--restart-delay-max",
            "1",
            "--log-level",
            "WARNING",
            log="run.log",
        )
        registered_children(app, supervisor, workers)
        job_ids = submit_short_jobs(app, count)
        chaos = unleash(app, supervisor, time.monotonic() + 240)
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(60)
        wait_for(lambda: not worker_children(supervisor), 10, "the workers to exit")
        figures = check(app, job_ids, chaos)
    finally:
        app.close()
    print(f"chaos on {backend} with {workers} workers: {figures}")
    assert figures["kills"] and figures["recovered"]  # the kills did hit jobs in flight


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_chaos_with_the_database_restarted_in_the_middle_loses_no_job(tmp_path: Path) -> None:
    with private_server() as server:
        app = App(tmp_path, server.url)
        try:
            supervisor = app.start(
                "run", "--workers", "3", "--poll-interval", "0.1", "--heartbeat-interval", "1",
                "--dead-after", "4", "--restart-delay", "0.2", "--restart-delay-max", "1",
                "--log-level", "WARNING", log="run.log",
            )  # fmt: skip
            registered_children(app, supervisor, 3)
            job_ids = submit_short_jobs(app, 2_000)
            chaos = unleash(app, supervisor, time.monotonic() + 240, server.restart)
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(60)
            wait_for(lambda: not worker_children(supervisor), 10, "the workers to exit")
            figures = check(app, job_ids, chaos)
        finally:
            app.close()
    print(f"chaos with a database restart: {figures}")
    assert figures["kills"]
