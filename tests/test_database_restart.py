"""A private PostgreSQL stopped for 10 s under a running worker: no outcome lost, none twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from private_postgres import ONLY_COMMITS_WRITE_THE_WAL, PrivateServer, private_server
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import DatabaseUnavailable, Engine, Status

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(150)]
T = TypeVar("T")
JOBS = 500
OUTAGE = 10.0

APP = '''
"""Short jobs for the database restart test."""
import time

from jobengine import Engine

engine = Engine()


@engine.job
def short(ctx, number):
    ctx.progress(0.0)  # database writes from the job's own thread, which may meet the outage
    time.sleep(0.05)
    ctx.progress(1.0)
    return number
'''


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    state: Callable[[], str] = lambda: "",
) -> T:
    """wait_for, through database errors, saying the state if it times out."""

    def through_outages() -> T | None:
        with contextlib.suppress(DatabaseUnavailable):
            return condition()
        return None

    try:
        return wait_for(through_outages, timeout, what)  # type: ignore[return-value]
    except AssertionError as error:
        raise AssertionError(f"{error} {state()}") from None


@contextlib.contextmanager
def worker_process(server: PrivateServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`jobengine worker` on the private server, its log in tmp_path; killed if still running."""
    (tmp_path / "restart_app.py").write_text(APP)
    command = [sys.executable, "-m", "jobengine", "--app", "restart_app"]
    command += ["--database-url", server.url, "worker", "--poll-interval", "0.2"]
    command += ["--log-file", str(tmp_path / "worker.log")]
    with (tmp_path / "worker.stderr").open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=output)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def warning_count(log_file: Path) -> int:
    return log_file.read_text().count(" WARNING ")


def terminal_count(engine: Engine) -> int:
    counts = engine.store.jobs.count_by_status()
    return sum(count for status, count in counts.items() if status.terminal)


def submit_jobs(engine: Engine) -> None:
    @engine.job
    def short(ctx: object, number: int) -> int:  # the submitting side of the app's job type
        return number

    for number in range(JOBS):
        engine.submit("short", number=number)


def test_the_worker_survives_a_database_restart_and_records_each_job_once(
    tmp_path: Path,
) -> None:
    with private_server() as server, worker_process(server, tmp_path) as worker:
        engine = Engine(server.url)
        try:
            submit_jobs(engine)
            wait_until(lambda: terminal_count(engine) >= 100, 60, "the first 100 jobs")
            restart_under(worker, server, tmp_path / "worker.log")
            wait_until(
                lambda: terminal_count(engine) == JOBS,
                90,
                f"every job to end; see {tmp_path / 'worker.log'}",
                lambda: str(engine.store.jobs.count_by_status()),
            )
            assert worker.poll() is None
            check_each_job_recorded_once(engine)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=40) == 0
        finally:
            engine.close()


def test_a_crash_that_loses_a_claim_leaves_the_job_to_its_one_run() -> None:
    """A claim committing alone does not wait for the WAL flush (decision 0010): the server
    crashing right after loses it, the job PENDING again while the worker runs it. The worker
    claims it again and the run goes on as that claim's: the job runs once, ends SUCCESS."""
    runs, release = [], threading.Event()
    with private_server() as server:
        server.settings = ONLY_COMMITS_WRITE_THE_WAL
        server.restart()
        engine = Engine(server.url)
        engine.job(name="held")(lambda: runs.append(1) or release.wait(60))
        try:
            with worker_thread(engine, heartbeat_interval=30.0, dead_after=90.0):
                writer = server.process("walwriter")
                os.kill(writer, signal.SIGSTOP)
                job_id = engine.submit("held")
                wait_for(lambda: runs, 30, "the job to run")
                first_start = engine.get(job_id).started_at or 0.0  # visible, not on disk yet
                os.kill(writer, signal.SIGKILL)  # a crash: the postmaster resets every process
                wait_for(lambda: started_after(engine, job_id, first_start), 60, "a new claim")
                release.set()
                wait_for_status(engine, job_id, {Status.SUCCESS}, 30)
            verbs = [event.verb for event in engine.events(job_id)]
        finally:
            release.set()
            engine.close()
    assert runs == [1]
    assert verbs == ["submit", "claim", "start", "finish"]  # the lost claim left no event


def started_after(engine: Engine, job_id: int, before: float) -> bool:
    try:
        started = engine.get(job_id).started_at
    except DatabaseUnavailable:
        return False  # the server is still recovering
    return started is not None and started > before


def restart_under(worker: subprocess.Popen[bytes], server: PrivateServer, log: Path) -> None:
    """Stop the server for OUTAGE seconds while the worker runs, then start it again."""
    warnings = warning_count(log)
    server.stop("fast")
    down_since = time.monotonic()
    wait_until(lambda: warning_count(log) > warnings, OUTAGE, "the worker to log the outage")
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))  # the outage itself
    assert worker.poll() is None, "the worker died while the database was down"
    server.start()


def check_each_job_recorded_once(engine: Engine) -> None:
    jobs = engine.list(limit=JOBS + 1)
    assert len(jobs) == JOBS
    assert {job.status for job in jobs} == {Status.SUCCESS}
    assert sorted(job.result for job in jobs) == list(range(JOBS))
    with engine.store.database.transaction(write=False) as transaction:
        rows = transaction.execute(
            "SELECT job_id, COUNT(*) AS ends FROM job_events"
            " WHERE to_status IN ('SUCCESS', 'WARNING', 'FAILURE', 'CANCELED') GROUP BY job_id"
        )
    assert len(rows) == JOBS
    assert {row["ends"] for row in rows} == {1}, "a job was recorded as ended more than once"
