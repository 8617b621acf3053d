"""Real `jobengine worker` processes on both backends: jobs end to end, SIGTERM, `log --follow`."""

from __future__ import annotations

import importlib.util
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from waiting import wait_for

from jobengine import Engine, Status

pytestmark = pytest.mark.timeout(90)

APP = '''
"""Job types for the end-to-end tests of real worker processes."""
import os
import time
from pathlib import Path

from jobengine import Engine

engine = Engine()


@engine.job
def add(a, b):
    return a + b


@engine.job
def warn(ctx):
    ctx.log.info("the disk is almost full")
    return ("WARNING", "disk 91% full", None)


@engine.job
def explode():
    raise RuntimeError("boom")


@engine.job
def whoami():
    return {"pid": os.getpid()}


@engine.job
def gated(ctx, gate):
    """Logs three lines, waits until the test creates the file `gate`, logs three more."""
    for number in range(3):
        ctx.log.info("before %s", number)
    deadline = time.monotonic() + 60
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gate never opened")
        ctx.sleep(0.05)
    for number in range(3):
        print(f"after {number}")
'''


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    engine: Engine
    url: str
    log_file: Path
    folder: Path

    def terminal(self, job_id: int) -> bool:
        return self.engine.get(job_id).status.terminal

    def stop(self) -> int:
        """SIGTERM, then the exit status (within a deadline)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=40)


def load_app(path: Path, url: str) -> Engine:
    """The app's engine in this process (under a unique module name), pointed at `url`."""
    spec = importlib.util.spec_from_file_location(f"process_app_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine: Engine = module.engine
    engine.configure(url)
    return engine


def jobengine_command(url: str) -> list[str]:
    return [sys.executable, "-m", "jobengine", "--app", "process_app", "--database-url", url]


@pytest.fixture
def worker_process(database_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    app = tmp_path / "process_app.py"
    app.write_text(APP)
    engine = load_app(app, database_url)
    engine.store  # noqa: B018 - create the schema before the worker and the test race to
    log_file = tmp_path / "worker.log"
    command = [*jobengine_command(database_url), "worker", "--poll-interval", "0.2"]
    command += ["--log-file", str(log_file), "--shutdown-timeout", "20"]
    with (tmp_path / "worker.stderr").open("wb") as stderr:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=stderr, stderr=stderr)
    try:
        yield WorkerProcess(process, engine, database_url, log_file, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        engine.close()


def test_a_worker_process_runs_jobs_and_stops_on_sigterm(worker_process: WorkerProcess) -> None:
    engine = worker_process.engine
    ids = {
        "add": engine.submit("add", a=2, b=3),
        "warn": engine.submit("warn"),
        "explode": engine.submit("explode"),
        "whoami": engine.submit("whoami"),
    }
    wait_for(lambda: all(worker_process.terminal(job_id) for job_id in ids.values()))
    jobs = {name: engine.get(job_id) for name, job_id in ids.items()}
    assert jobs["add"].status is Status.SUCCESS and jobs["add"].result == 5
    assert (jobs["warn"].status, jobs["warn"].output) == (Status.WARNING, "disk 91% full")
    assert [line.text for line in engine.log(ids["warn"])] == ["job.warn: the disk is almost full"]
    assert jobs["explode"].status is Status.FAILURE
    assert jobs["explode"].errors is not None
    assert jobs["explode"].errors.startswith("RuntimeError: boom")
    assert jobs["whoami"].result == {"pid": worker_process.process.pid}
    assert {job.worker for job in jobs.values()} == {jobs["add"].worker}
    worker_id = jobs["add"].worker
    assert worker_id is not None and worker_id.split(":")[1] == str(worker_process.process.pid)

    assert worker_process.stop() == 0
    [record] = [r for r in engine.store.workers.find(include_stopped=True) if r.id == worker_id]
    assert record.state == "stopped" and record.stopped_at is not None
    own_log = worker_process.log_file.read_text()
    for verb in ("claim", "start", "finish"):
        assert f"{verb} job {ids['add']}" in own_log, f"no {verb} line in the worker's log"
    assert f"worker {worker_id} stopped" in own_log


def test_sigterm_lets_the_running_job_finish_first(worker_process: WorkerProcess) -> None:
    engine, gate = worker_process.engine, worker_process.folder / "gate"
    job_id = engine.submit("gated", gate=str(gate))
    wait_for(lambda: engine.get(job_id).status is Status.RUNNING)
    worker_process.process.send_signal(signal.SIGTERM)
    wait_for(lambda: [r.state for r in engine.store.workers.find()] == ["draining"])
    assert worker_process.process.poll() is None, "the worker waits for its running job"
    gate.touch()
    assert worker_process.process.wait(timeout=40) == 0
    assert engine.get(job_id).status is Status.SUCCESS
    [record] = engine.store.workers.find(include_stopped=True)
    assert record.state == "stopped"


def read_lines(stream: IO[bytes], lines: queue.Queue[str]) -> None:
    for raw in stream:
        lines.put(raw.decode().rstrip("\n"))


def next_lines(lines: queue.Queue[str], count: int) -> list[str]:
    return [lines.get(timeout=30) for _ in range(count)]


def test_log_follow_tails_a_running_job_until_it_ends(worker_process: WorkerProcess) -> None:
    engine, gate = worker_process.engine, worker_process.folder / "gate"
    job_id = engine.submit("gated", gate=str(gate))
    wait_for(lambda: len(engine.log(job_id)) == 3)
    assert engine.get(job_id).status is Status.RUNNING
    command = [*jobengine_command(worker_process.url), "log", str(job_id), "--follow"]
    follower = subprocess.Popen(command, cwd=worker_process.folder, stdout=subprocess.PIPE)
    assert follower.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(follower.stdout, lines), daemon=True).start()
    try:
        before = next_lines(lines, 3)
        assert follower.poll() is None, "--follow keeps going while the job runs"
        gate.touch()
        after = next_lines(lines, 3)
        assert follower.wait(timeout=30) == 0, "--follow ends when the job ends"
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
        follower.stdout.close()
    texts = [line.split(" ", 3)[3] for line in before + after]
    assert texts == [f"INFO    job.gated: before {n}" for n in range(3)] + [
        f"STDOUT  after {n}" for n in range(3)
    ]
    assert engine.get(job_id).status is Status.SUCCESS
