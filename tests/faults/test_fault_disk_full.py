"""Fault: the disk holding the SQLite database fills up while a job runs, then frees up."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_steps import read, statuses
from invariants import check_invariants
from waiting import wait_for, worker_thread

from jobengine import Engine
from jobengine.model import Job

WAIT = 10.0
DISK_SIZE = "32m"
LEFT_FREE = 512 * 1024  # room for small writes (a heartbeat), none for the job's big ones
# More than SQLite's page cache (2 MB): such a write spills to the WAL before its COMMIT, so the
# full disk shows at the statement itself, not only at the commit.
BIG_RESULT = "r" * 3_000_000
BIG_LINES = [f"line {number} " + "x" * 10_000 for number in range(300)]
SMALL_LINES = [f"line {number} printed while the disk is full" for number in range(3)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE mounted on a folder of the test's own, unmounted afterwards."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full (ENOSPC), then give back LEFT_FREE; return it."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as output:
        while True:
            try:
                output.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
    os.truncate(filler, filler.stat().st_size - LEFT_FREE)
    disk = os.statvfs(folder)
    assert disk.f_bavail * disk.f_frsize <= LEFT_FREE + 65536
    return filler


class Warnings(logging.Handler):
    """The worker's warnings, kept to see when the recorder met the full disk."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(logging.Formatter().format(record))  # with its traceback

    def seen(self, text: str) -> bool:
        return any(text in message for message in list(self.messages))


def run_through_full_disk(folder: Path, lines: list[str], result: str) -> tuple[Job, list[str]]:
    """Run a job that prints `lines` and returns `result` once the disk is full, free the disk
    after the recorder met it; return the job as recorded and its log."""
    database_url = f"sqlite:///{folder / 'jobs.db'}"
    engine = Engine(database_url)
    gate = threading.Event()

    @engine.job
    def writer() -> str:
        print("printed before the disk filled")
        if not gate.wait(WAIT):
            raise RuntimeError("the test never opened the gate")
        for line in lines:
            print(line)
        return result

    warnings = Warnings()
    logging.getLogger("jobengine").addHandler(warnings)
    try:
        with worker_thread(engine, concurrency=1, shutdown_timeout=2.0):
            job_id = engine.submit("writer")
            wait_for(lambda: logged(engine, job_id), WAIT, "the job's first line to be stored")
            filler = fill(folder)
            gate.set()
            wait_for(
                lambda: warnings.seen("disk is full"), WAIT, "the recorder to meet the full disk"
            )
            assert statuses(engine, [job_id])[job_id] == "RUNNING"
            filler.unlink()
            wait_for(lambda: ended(engine, job_id), WAIT, "the job to be recorded")
    finally:
        logging.getLogger("jobengine").removeHandler(warnings)
    job = engine.get(job_id)
    events = [event.to_status.value for event in engine.events(job_id)]
    assert events == ["PENDING", "QUEUED", "RUNNING", job.status.value], events
    texts = [line.text for line in engine.log(job_id)]
    engine.close()
    check_invariants(database_url)
    return job, texts


# PostgreSQL is left out: filling the disk under the shared test server's data directory would
# break every other test and session using it, and the server owns its own disk-full handling
# (it refuses the write and rolls the transaction back, an OperationalError the backend already
# treats as the database being unavailable).
@pytest.mark.timeout(60)
def test_disk_full_while_recording_an_outcome_keeps_it_until_written(small_disk: Path) -> None:
    job, texts = run_through_full_disk(small_disk, SMALL_LINES, BIG_RESULT)
    assert job.status.value == "SUCCESS", (job.status, job.errors)
    assert job.result == BIG_RESULT
    assert texts == ["printed before the disk filled", *SMALL_LINES]


@pytest.mark.timeout(60)
def test_disk_full_while_writing_log_lines_keeps_each_line_once(small_disk: Path) -> None:
    job, texts = run_through_full_disk(small_disk, BIG_LINES, "done")
    assert job.status.value == "SUCCESS", (job.status, job.errors)
    assert job.result == "done"
    expected = ["printed before the disk filled", *BIG_LINES]
    assert texts == expected, f"{len(texts)} lines stored, {len(expected)} printed"


def logged(engine: Engine, job_id: int) -> Any:
    return read(engine, "SELECT 1 FROM job_logs WHERE job_id = ?", [job_id])


def ended(engine: Engine, job_id: int) -> bool:
    return statuses(engine, [job_id])[job_id] not in ("QUEUED", "RUNNING", "TO_CANCEL")
