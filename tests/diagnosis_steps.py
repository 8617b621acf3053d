"""Shared steps of the diagnosis tests (why, doctor, stack, support bundle): an app whose worker
processes run jobs that get stuck in known places, and engines that look at them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from waiting import wait_for
from worker_processes import _load, kill_tree

from jobengine import Engine, ManualClock, Status
from jobengine.cli import main
from jobengine.store import WorkerRecord
from jobengine.worker import Settings, Worker

# The --app module of the worker processes. Each job type gets stuck somewhere a test can name.
APP_SOURCE = '''
"""Job types for the diagnosis tests."""
import time

from jobengine import Engine


def spin_in_known_function(ctx, note: str = "") -> int:
    ctx.log.info("spinning")
    total = 0
    while not ctx.cancel_requested:
        total += 1
    return total


def chatty(ctx, line: str, seconds: float) -> None:
    ctx.log.info(line)
    ctx.sleep(seconds)


def nap(ctx, seconds: float) -> None:
    ctx.sleep(seconds)


def connect(ctx, dsn: str, password: str) -> None:
    ctx.log.info(f"connecting to {dsn} with password={password}")
    raise ConnectionError(f"cannot connect to {dsn}")


def register(engine):
    engine.job(spin_in_known_function)
    engine.job(spin_in_known_function, name="spin_in_process", isolation="process")
    engine.job(chatty)
    engine.job(nap)
    engine.job(nap, name="nap_twice", max_attempts=2)
    engine.job(nap, name="report", queue="reports")
    engine.job(connect)
    return engine


engine = register(Engine())
'''


class DiagnosisApp:
    """The app module in a test's folder, its worker processes, and an engine on its database."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder, self.url = folder, database_url
        self.name = f"diagnosis_app_{uuid.uuid4().hex[:8]}"
        (folder / f"{self.name}.py").write_text(APP_SOURCE)
        self.module = _load(folder / f"{self.name}.py", self.name)
        self.engine: Engine = self.module.register(Engine(database_url))
        self.processes: list[subprocess.Popen[bytes]] = []

    def worker(self, *options: str, url: str | None = None) -> subprocess.Popen[bytes]:
        """A worker process (`python -m jobengine --app APP worker OPTIONS`)."""
        command = [sys.executable, "-m", "jobengine", "--app", self.name]
        command += ["--database-url", url] if url else []
        command += ["worker", "--poll-interval", "0.1", "--heartbeat-interval", "0.5", *options]
        if "--log-file" not in options:
            command += ["--log-file", ""]
        environment = {**os.environ, "JOBENGINE_DATABASE_URL": self.url}
        with open(self.folder / "worker.out", "ab") as output:
            process = subprocess.Popen(
                command, cwd=self.folder, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def registered(self, process: subprocess.Popen[bytes]) -> WorkerRecord:
        def find() -> WorkerRecord | None:
            rows = self.engine.store.workers.find()
            return next((r for r in rows if r.pid == process.pid and r.state == "running"), None)

        try:
            return wait_for(find, 60, f"worker process {process.pid} to register")
        except AssertionError as error:
            output = (self.folder / "worker.out").read_text(errors="replace")
            raise AssertionError(f"{error}; its output:\n{output}") from None

    def running(self, job_id: int) -> None:
        wait_for(
            lambda: self.engine.get(job_id).status is Status.RUNNING, 60, f"job {job_id} to run"
        )

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker process (and its children) and reap it."""
        kill_tree(process.pid)
        process.wait(10)

    def observer(self, ahead: float = 0.0) -> Engine:
        """An engine on the app's database whose clock reads `ahead` seconds past now."""
        engine = Engine(self.url, clock=ManualClock(time.time() + ahead))
        self.module.register(engine)
        return engine

    def close(self) -> None:
        for process in self.processes:
            kill_tree(process.pid)
            process.wait(10)
        self.engine.close()


@contextlib.contextmanager
def diagnosis_app(folder: Path, database_url: str) -> Iterator[DiagnosisApp]:
    app = DiagnosisApp(folder, database_url)
    try:
        yield app
    finally:
        app.close()


def cli(url: str, *arguments: str, app: str | None = None, **environment: str) -> Result:
    """`jobengine --database-url URL [--app APP] ARGUMENTS` in this process."""
    runner = CliRunner(env={"JOBENGINE_DATABASE_URL": None, "JOBENGINE_APP": None, **environment})
    options = ["--database-url", url] + (["--app", app] if app else [])
    return runner.invoke(main, [*options, *arguments])


class Gate:
    """A blocking call a job cannot be interrupted in (a read of a pipe, in C), opened by the
    test: the thread-isolated job that 'runs for ever' until the test lets it go."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()

    def block(self) -> None:
        os.read(self.read_end, 1)

    def open(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.write_end, b"x" * 64)

    def close(self) -> None:
        self.open()
        for descriptor in (self.read_end, self.write_end):
            with contextlib.suppress(OSError):
                os.close(descriptor)


@contextlib.contextmanager
def live_worker(engine: Engine, **settings: Any) -> Iterator[Worker]:
    """A worker running in a thread of this process, registered (and beating) before the block
    starts; stopped at its end."""
    options = {
        "poll_interval": 0.05,
        "heartbeat_interval": 0.1,
        "cancel_grace": 0.3,
        "kill_grace": 1.0,
        "shutdown_timeout": 2.0,
        **settings,
    }
    worker = Worker(engine, Settings(**options))
    thread = threading.Thread(target=worker.run, daemon=True, name="test-worker")
    thread.start()
    try:
        wait_for(lambda: worker.id in {w.id for w in engine.store.workers.find()}, 30, "a worker")
        yield worker
    finally:
        worker.stop()
        worker.stop()  # a second stop: do not wait for jobs blocked by the test
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"


def beaten_since(engine: Engine, worker: Worker) -> None:
    """Wait until the worker has beaten at (or after) the engine's clock's present time."""
    now = engine.clock.now()

    def beaten() -> bool:
        rows = {w.id: w for w in engine.store.workers.find()}
        return worker.id in rows and rows[worker.id].heartbeat >= now

    wait_for(beaten, 30, f"worker {worker.id} to beat at {now}")


def send_usr1(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGUSR1)
