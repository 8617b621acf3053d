"""Real worker and supervisor processes for the recovery tests: an app, start, stop, read."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import psutil
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.store import WorkerRecord

ACTIVE = [Status.QUEUED, Status.RUNNING, Status.TO_CANCEL]

# The --app module the worker processes import. Each execution of a job appends one line
# "job attempt" to a file named after the process, in one unbuffered write, so that what ran
# is known even for processes killed with SIGKILL.
APP_SOURCE = '''
"""Job types for the recovery tests."""
import os
import sys
import time

from jobengine import Engine

RUNS = os.environ.get("RECOVERY_RUNS", "")


def record(ctx):
    if RUNS:
        path = os.path.join(RUNS, str(os.getpid()))
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(descriptor, f"{ctx.job_id} {ctx.attempt}\\n".encode())
        os.close(descriptor)


def short(ctx, milliseconds: int) -> int:
    record(ctx)
    time.sleep(milliseconds / 1000)
    return os.getpid()


def nap(ctx, seconds: float) -> int:
    record(ctx)
    ctx.sleep(seconds)
    return os.getpid()


def register(engine):
    engine.job(short, max_attempts=5)
    engine.job(nap, name="nap")
    engine.job(nap, name="nap_retried", max_attempts=3)
    engine.job(nap, name="nap_idempotent", idempotent=True)
    return engine


if os.environ.get("RECOVERY_BROKEN") and os.path.exists(os.environ["RECOVERY_BROKEN"]):
    if "worker" in sys.argv:
        sys.exit("this deploy is broken")
engine = register(Engine())
'''


class App:
    """The app module written into a test's folder, and an engine on the test's database."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder, self.database_url = folder, database_url
        self.name = f"recovery_app_{uuid.uuid4().hex[:8]}"
        (folder / f"{self.name}.py").write_text(APP_SOURCE)
        self.runs = folder / "runs"
        self.runs.mkdir(exist_ok=True)
        self.module = _load(folder / f"{self.name}.py", self.name)
        self.engine: Engine = self.module.register(Engine(database_url))
        self.processes: list[subprocess.Popen[bytes]] = []

    def environment(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "JOBENGINE_DATABASE_URL": self.database_url,
            "RECOVERY_RUNS": str(self.runs),
            **extra,
        }

    def start(
        self, *arguments: str, log: str = "process.log", **extra: str
    ) -> subprocess.Popen[bytes]:
        """`python -m jobengine --app <app> <arguments>`, its output in `log`."""
        command = [sys.executable, "-m", "jobengine", "--app", self.name, *arguments]
        with open(self.folder / log, "ab") as output:
            process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=self.environment(**extra),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def worker(self, *options: str, log: str = "worker.log") -> subprocess.Popen[bytes]:
        return self.start("worker", "--poll-interval", "0.1", "--log-file", "", *options, log=log)

    def log(self, name: str) -> str:
        path = self.folder / name
        return path.read_text(errors="replace") if path.exists() else ""

    def registered(self, pid: int, timeout: float = 60) -> WorkerRecord:
        """Wait until the worker process `pid` has registered; return its row."""

        def find() -> WorkerRecord | None:
            rows = self.engine.store.workers.find()
            return next((row for row in rows if row.pid == pid and row.state == "running"), None)

        return wait_for(find, timeout, f"worker process {pid} to register")

    def executions(self) -> Counter[int]:
        """How many times each job ran, from the lines the job function wrote."""
        counts: Counter[int] = Counter()
        for path in self.runs.iterdir():
            for line in path.read_text().splitlines():
                counts[int(line.split()[0])] += 1
        return counts

    def close(self) -> None:
        """Kill whatever the test left running (and its children), then close the engine."""
        for process in self.processes:
            kill_tree(process.pid)
            process.wait(10)
        self.engine.close()


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant; return the pids killed."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    return [process.pid for process in family]


def worker_children(supervisor: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The supervisor's living worker processes, oldest first."""
    try:
        children = psutil.Process(supervisor.pid).children()
    except psutil.NoSuchProcess:
        return []
    alive = [child for child in children if _living(child)]
    return sorted(alive, key=lambda child: child.create_time())


def _living(child: psutil.Process) -> bool:
    """Neither a zombie nor gone (a draining worker may exit between listing and asking)."""
    try:
        return bool(child.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def registered_children(app: App, supervisor: subprocess.Popen[bytes], count: int) -> list[int]:
    """Wait until `count` worker processes of the supervisor have registered; their pids."""

    def ready() -> list[int] | None:
        pids = [child.pid for child in worker_children(supervisor)]
        rows = {row.pid for row in app.engine.store.workers.find() if row.state == "running"}
        return pids if len(pids) == count and set(pids) <= rows else None

    return wait_for(ready, 60, f"{count} registered workers")


def all_gone(pids: Sequence[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def events_by_job(engine: Engine) -> dict[int, list[dict[str, object]]]:
    """Every event of every job, in order, from one query."""
    with engine.store.database.transaction(write=False) as transaction:
        rows = transaction.execute("SELECT * FROM job_events ORDER BY id")
    grouped: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        grouped.setdefault(int(row["job_id"]), []).append(row)
    return grouped


def pause_cleanly(process: subprocess.Popen[bytes], engine: Engine, job_ids: list[int]) -> None:
    """SIGSTOP `process` at a moment it holds no lock the others need (a write lock on SQLite,
    a row lock of its jobs or its worker row on PostgreSQL): else resume it and try again."""
    database = engine.store.database
    watched = psutil.Process(process.pid)
    for _ in range(50):
        process.send_signal(signal.SIGSTOP)
        wait_for(lambda: watched.status() == psutil.STATUS_STOPPED, 10, "the worker to stop")
        if _nothing_locked(engine, job_ids, database.dialect):
            return
        process.send_signal(signal.SIGCONT)
        wait_for(lambda: watched.status() != psutil.STATUS_STOPPED, 10, "the worker to resume")
    raise AssertionError("could not pause the worker outside a transaction")


def _nothing_locked(engine: Engine, job_ids: list[int], dialect: str) -> bool:
    if dialect == "sqlite":
        import sqlite3

        from jobengine.store.sqlite import sqlite_path

        connection = sqlite3.connect(sqlite_path(engine.url), timeout=0.3, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            connection.close()
    try:
        with engine.store.database.transaction() as transaction:
            transaction.execute("SET LOCAL lock_timeout = '300ms'")
            marks = ", ".join("?" * len(job_ids))
            transaction.execute(f"SELECT id FROM jobs WHERE id IN ({marks}) FOR UPDATE", job_ids)
            transaction.execute("SELECT id FROM workers FOR UPDATE")
        return True
    except Exception:
        return False
