"""Timeouts: a runaway job goes down the cancel ladder and ends FAILURE, leaving no process."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import stopping_jobs
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import Engine, Status

ENDED = {Status.CANCELED, Status.SUCCESS, Status.WARNING, Status.FAILURE}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(90)
def test_runaway_jobs_end_failure_with_timeout_reason(
    stopping_engine: Engine, tmp_path: Path
) -> None:
    engine = stopping_engine
    pid_file = tmp_path / "grandchild.pid"
    with worker_thread(engine, kill_grace=1.0) as worker:
        job_ids = {
            "busy_loop": engine.submit("busy_loop", timeout=2),
            "busy_loop_process": engine.submit("busy_loop_in_process", timeout=2),
            "sleep": engine.submit("sleep_forever", timeout=2),
            "swallow": engine.submit("swallow_everything", timeout=2),
            "stubborn_child": engine.submit("stubborn_child", pid_file=str(pid_file), timeout=2),
        }
        for job_id in job_ids.values():
            wait_for_status(engine, job_id, ENDED, timeout=20)
        process_executor = worker.executors["process"]
    for name, job_id in job_ids.items():
        job = engine.get(job_id)
        assert job.status is Status.FAILURE, name
        assert "timed out after 2 s" in (job.errors or ""), name
        assert engine.events(job_id)[-1].verb == "reap", name
    grandchild = int(pid_file.read_text())
    wait_for(lambda: gone(grandchild), 5, "the job's grandchild to be gone")
    assert not getattr(process_executor, "busy", {})


@pytest.mark.timeout(60)
def test_job_without_timeout_can_still_be_canceled(stopping_engine: Engine) -> None:
    engine = stopping_engine
    with worker_thread(engine):
        job_id = engine.submit("sleep_forever")
        stopping_jobs.wait_until_started(engine, job_id)
        assert engine.get(job_id).timeout is None
        engine.cancel(job_id)
        assert wait_for_status(engine, job_id, ENDED, timeout=15) is Status.CANCELED


@pytest.mark.timeout(60)
def test_timed_out_job_with_attempts_left_is_retried(stopping_engine: Engine) -> None:
    engine = stopping_engine
    with worker_thread(engine):
        job_id = engine.submit("busy_loop", timeout=1, max_attempts=2)
        wait_for(lambda: engine.get(job_id).attempt == 2, 20, "a second attempt")
    retry = next(event for event in engine.events(job_id) if event.verb == "retry")
    assert "timed out after 1 s" in (retry.reason or "")
