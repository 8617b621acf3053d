"""A private PostgreSQL stopped for 10 s under a running worker: no outcome lost, none twice."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from private_postgres import PrivateServer, private_server
from waiting import wait_for

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
