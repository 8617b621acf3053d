"""Fault: a job prints 100 MB without a single newline (issue 10, item 11).

A real `jobengine worker` process runs the job. The log capture must cost linear time, keep
bounded memory (the worker's peak resident size, read from /proc, grows far less than what
was printed) and store a capped log that ends with the truncation marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from invariants import check_invariants
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.joblog import LONGEST_LINE
from jobengine.settings import DEFAULT_LOG_CAP

PRINTED = 100 * 1024 * 1024  # characters the job prints, none of them a newline
PIECE = 7919  # characters per print(): a prime, so pieces never line up with LONGEST_LINE
MOST_SECONDS = 60.0
MOST_GROWTH = 64 * 1024 * 1024  # bytes the worker's peak resident size may grow by
APP_SOURCE = f'''
"""A job that floods its standard output without a newline."""
from jobengine import Engine

engine = Engine()


@engine.job
def flood(total: int) -> int:
    piece = "x" * {PIECE}
    printed = 0
    while printed < total:
        print(piece, end="")
        printed += len(piece)
    return printed
'''


def flood(total: int) -> int:
    """The job's signature, so that this test's engine can submit it (the worker runs it)."""
    raise AssertionError("the worker process runs this job, never the test")


def peak_resident_bytes(pid: int) -> int:
    """The highest resident set size the process has had (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no VmHWM line")


def start_worker(folder: Path, database_url: str) -> subprocess.Popen[bytes]:
    name = f"flood_app_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(APP_SOURCE)
    command = [sys.executable, "-m", "jobengine", "--app", name, "worker"]
    options = ["--poll-interval", "0.1", "--concurrency", "1", "--log-file", ""]
    with open(folder / "worker.log", "ab") as output:
        return subprocess.Popen(
            [*command, *options],
            cwd=folder,
            env={**os.environ, "JOBENGINE_DATABASE_URL": database_url},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_hundred_megabytes_without_newlines_costs_linear_time_and_bounded_memory(
    database_url: str, tmp_path: Path
) -> None:
    engine = Engine(database_url)
    engine.job(flood)
    worker = start_worker(tmp_path, database_url)
    try:
        wait_for(
            lambda: any(row.pid == worker.pid for row in engine.store.workers.find()),
            60,
            "the worker to register",
        )
        resident_before = peak_resident_bytes(worker.pid)
        started = time.monotonic()
        job_id = engine.submit("flood", total=PRINTED)
        wait_for(lambda: engine.get(job_id).status.terminal, MOST_SECONDS, "the flood to end")
        took = time.monotonic() - started
        growth = peak_resident_bytes(worker.pid) - resident_before
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    job = engine.get(job_id)
    assert (job.status, job.result) == (Status.SUCCESS, -(-PRINTED // PIECE) * PIECE)
    assert took < MOST_SECONDS
    assert growth < MOST_GROWTH, f"the worker grew by {growth / 2**20:.0f} MiB"
    lines = engine.log(job_id)  # 161 lines: one page
    *flooded, marker = lines
    assert marker.text == f"[log truncated: more than {DEFAULT_LOG_CAP} bytes]"
    assert {line.level for line in flooded} == {"STDOUT"}
    assert {line.text for line in flooded} == {"x" * LONGEST_LINE}
    assert sum(len(line.text) + 1 for line in flooded) <= DEFAULT_LOG_CAP
    assert len(flooded) == DEFAULT_LOG_CAP // (LONGEST_LINE + 1)
    engine.close()
    check_invariants(database_url)
    print(f"\n{database_url.split(':')[0]}: {took:.1f} s, peak grew {growth / 2**20:.1f} MiB")
