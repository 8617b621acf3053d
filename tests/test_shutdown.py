"""Shutdown never hangs: SIGTERM drains, then stops what is left through the ladder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stopping_jobs
from waiting import wait_for

from jobengine import Engine, Status

TESTS = Path(__file__).parent
ACTIVE = {Status.QUEUED, Status.RUNNING, Status.TO_CANCEL}
SHUTDOWN_TIMEOUT, KILL_GRACE = 1.0, 1.0


def start_worker(database_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(TESTS)}
    command = [
        sys.executable,
        "-m",
        "jobengine",
        "--app",
        "stopping_jobs",
        "--database-url",
        database_url,
        "worker",
        "--concurrency",
        "20",
        "--poll-interval",
        "0.1",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
        "--kill-grace",
        str(KILL_GRACE),
        "--log-file",
        str(tmp_path / "worker.log"),
    ]
    return subprocess.Popen(command, env=environment, cwd=tmp_path)


@pytest.mark.timeout(120)
def test_sigterm_with_runaway_jobs_exits_in_time_and_leaves_nothing_active(
    database_url: str, tmp_path: Path
) -> None:
    engine = stopping_jobs.register(Engine(database_url))
    runaway = [
        "busy_loop",
        "sleep_forever",
        "swallow_everything",
        "deadlock",
        "socket_read",
        "c_loop",
        "busy_loop",
        "sleep_forever",
        "swallow_everything",
        "socket_read",
    ]
    job_ids = [engine.submit(name) for name in runaway]
    retried = engine.submit("cooperative", max_attempts=3)
    quick = engine.submit("short_sleep", seconds=0.3)
    worker = start_worker(database_url, tmp_path)
    try:
        wait_for(
            lambda: all(engine.get(i).status is Status.RUNNING for i in [*job_ids, retried]),
            60,
            "every job to run",
        )
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        worker.wait(SHUTDOWN_TIMEOUT + KILL_GRACE + 1 + 5)
        exited_after = time.monotonic() - signalled
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0
    print(f"worker exited {exited_after:.2f} s after SIGTERM")
    for job_id in job_ids:
        job = engine.get(job_id)
        assert job.status is Status.FAILURE, (job.type, job.status)
        assert "interrupted by shutdown" in (job.errors or ""), job.type
    assert engine.get(retried).status is Status.PENDING
    assert engine.get(retried).attempt == 2
    assert engine.get(quick).status is Status.SUCCESS
    assert not engine.list(status=sorted(ACTIVE))
    workers = engine.store.workers.find(include_stopped=True)
    assert [record.state for record in workers] == ["stopped"]
    engine.close()


@pytest.mark.timeout(60)
def test_second_signal_skips_the_wait(sqlite_url: str, tmp_path: Path) -> None:
    engine = stopping_jobs.register(Engine(sqlite_url))
    job_id = engine.submit("short_sleep", seconds=30)
    worker = start_worker(sqlite_url, tmp_path)
    try:
        wait_for(lambda: engine.get(job_id).status is Status.RUNNING, 30, "the job to run")
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: engine.store.workers.find()[0].state == "draining", 10, "draining")
        worker.send_signal(signal.SIGTERM)
        worker.wait(KILL_GRACE + 5)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert engine.get(job_id).status is Status.FAILURE
    engine.close()
