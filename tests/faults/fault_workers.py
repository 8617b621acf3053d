"""Real worker processes for the fault tests, on a database a test can take away."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from outages import APP_SOURCE
from waiting import wait_for
from worker_processes import _load, kill_tree

from jobengine import Engine


class FaultApp:
    """The fault tests' app module in a test's folder, and worker processes that import it."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder, self.url = folder, database_url
        self.name = f"fault_app_{uuid.uuid4().hex[:8]}"
        (folder / f"{self.name}.py").write_text(APP_SOURCE)
        self.processes: list[subprocess.Popen[bytes]] = []
        module = _load(folder / f"{self.name}.py", self.name)
        self.engine: Engine = module.register(Engine(database_url))

    def worker(self, *options: str, log: str = "worker.log") -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "jobengine", "--app", self.name, "worker"]
        command += ["--poll-interval", "0.1", "--log-file", "", *options]
        environment = {**os.environ, "JOBENGINE_DATABASE_URL": self.url}
        with open(self.folder / log, "ab") as output:
            process = subprocess.Popen(
                command, cwd=self.folder, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def log(self, name: str = "worker.log") -> str:
        path = self.folder / name
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for process in self.processes:
            kill_tree(process.pid)
            process.wait(10)
        self.engine.close()


@contextlib.contextmanager
def fault_app(folder: Path, database_url: str) -> Iterator[FaultApp]:
    app = FaultApp(folder, database_url)
    try:
        yield app
    finally:
        app.close()


def registered(app: FaultApp, count: int) -> None:
    """Wait until `count` workers are running; their log if they do not."""

    def enough() -> bool:
        return sum(row.state == "running" for row in app.engine.store.workers.find()) >= count

    try:
        wait_for(enough, 60, f"{count} registered workers")
    except AssertionError as error:
        raise AssertionError(f"{error}; the workers' log:\n{app.log()}") from None
