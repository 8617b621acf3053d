"""Fault: a process-isolated job's child cannot be started (EMFILE: no file descriptor left)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fault_steps import ACTIVE, read, register_child_start_types, statuses
from invariants import check_invariants
from waiting import wait_for

from jobengine import Engine

FAULTS = Path(__file__).parent
WAIT = 10.0
APP_SOURCE = """
from fault_steps import register_child_start_types
from jobengine import Engine

engine = register_child_start_types(Engine())
"""


@contextmanager
def worker_process(database_url: str, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process (`jobengine worker`) serving the child-start job types."""
    name = f"child_start_app_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(APP_SOURCE)
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(FAULTS)]))
    environment = {**os.environ, "JOBENGINE_DATABASE_URL": database_url, "PYTHONPATH": path}
    options = ["--concurrency", "2", "--poll-interval", "0.1", "--shutdown-timeout", "2"]
    command = [sys.executable, "-m", "jobengine", "--app", name, "worker", *options]
    with open(folder / "worker.log", "ab") as output:
        process = subprocess.Popen(
            [*command, "--log-file", ""], cwd=folder, env=environment, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def lowest_free_descriptor(pid: int) -> int:
    """The lowest file descriptor number the process does not use: a limit there leaves it
    no room for a new one."""
    used = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    return next(number for number in range(len(used) + 1) if number not in used)


def ended(engine: Engine, job_id: int, status: str) -> bool:
    return statuses(engine, [job_id])[job_id] == status


@pytest.mark.timeout(90)
def test_child_that_cannot_start_fails_or_retries_its_job(
    database_url: str, tmp_path: Path
) -> None:
    engine = register_child_start_types(Engine(database_url))
    with worker_process(database_url, tmp_path) as worker:
        warm_up = engine.submit("warm_up")  # the worker's threads have their connections open
        wait_for(lambda: ended(engine, warm_up, "SUCCESS"), 60, "the worker to run a job")
        original = resource.prlimit(worker.pid, resource.RLIMIT_NOFILE)
        limit = lowest_free_descriptor(worker.pid)
        resource.prlimit(worker.pid, resource.RLIMIT_NOFILE, (limit, original[1]))
        try:
            failed = engine.submit("in_child")
            retried = engine.submit("in_child_retried")
            wait_for(lambda: ended(engine, failed, "FAILURE"), WAIT, f"job {failed} to fail")
            wait_for(lambda: engine.get(retried).attempt == 2, WAIT, f"job {retried} to retry")
        finally:
            resource.prlimit(worker.pid, resource.RLIMIT_NOFILE, original)
        wait_for(lambda: ended(engine, retried, "SUCCESS"), WAIT, f"job {retried} to succeed")
        assert worker.poll() is None, "the worker died"
    errors = read(engine, "SELECT errors FROM jobs WHERE id = ?", [failed])[0]["errors"] or ""
    assert "could not be started" in errors and "Too many open files" in errors, errors
    retry = [event for event in engine.events(retried) if event.verb == "retry"]
    assert len(retry) == 1 and "Too many open files" in (retry[0].reason or ""), retry
    assert engine.get(retried).attempt == 2
    assert not set(statuses(engine, [warm_up, failed, retried]).values()) & ACTIVE
    engine.close()
    check_invariants(database_url)
