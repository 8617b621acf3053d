"""Child processes: the side of process isolation that runs one job at a time, and how a child
process's end is told."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import json
import os
import queue
import signal
import sys
import threading
import traceback
from dataclasses import asdict
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from jobengine import joblog
from jobengine.context import JobCanceled, JobContext, job_logger
from jobengine.joblog import JobLog
from jobengine.model import LogLine
from jobengine.registry import JobType
from jobengine.runner import Outcome, failure_of, run_job

PR_SET_PDEATHSIG = 1
PATH_VARIABLE = "JOBENGINE_CHILD_SYS_PATH"
PARENT_VARIABLE = "JOBENGINE_WORKER_PID"  # the worker's import path, so the app imports


def describe_exit(code: int) -> str:
    """How a process ended, from its return code: 'exited with code 1', 'was killed by SIGKILL'."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def send(connection: Connection, lock: threading.Lock, message: dict[str, Any]) -> None:
    """Messages both ways are JSON text, never pickle."""
    data = json.dumps(message).encode()
    with lock:
        connection.send_bytes(data)


def receive(connection: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(connection.recv_bytes().decode())
    return message


def resolve(module_name: str, qualified_name: str) -> Any:
    """The job function, found by its module and name (the parent sent only names)."""
    if module_name == "__main__":
        raise ImportError(
            f"{qualified_name} is defined in the script being run; process-isolated job "
            "functions must live in an importable module"
        )
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    target: Any = module
    for part in qualified_name.split("."):
        target = getattr(target, part)
    return target


class Child:
    """Runs jobs sent by the worker in this process's main thread."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.context: JobContext | None = None
        self.jobs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        joblog.install()
        threading.Thread(target=self._read, daemon=True, name="control").start()
        while (message := self.jobs.get()) is not None:
            self.run(message)

    def run(self, message: dict[str, Any]) -> None:
        try:
            function = resolve(message["module"], message["function"])
        except Exception as error:
            send(self.connection, self.lock, {"started": True})
            send(self.connection, self.lock, {"outcome": _encode(failure_of(error))})
            return
        job_id, attempt, type_name = message["job"], message["attempt"], message["type"]
        job_type = JobType(name=type_name, function=function)
        job_log = JobLog(job_id, attempt, self._send_line, message["log_cap"])
        context = JobContext(job_id, attempt, type_name, job_logger(type_name), self._send_progress)
        self.context = context
        send(self.connection, self.lock, {"started": True})
        outcome = run_job(job_type, message["args"], context, job_log)
        self.context = None
        send(self.connection, self.lock, {"outcome": _encode(outcome)})

    def _read(self) -> None:
        """Jobs go to the main thread; cancel requests (step 1) go to the running job."""
        while True:
            try:
                message = receive(self.connection)
            except (EOFError, OSError):
                os._exit(1)  # the worker is gone: nothing left to report to
            if "job" in message:
                self.jobs.put(message)
            elif "stop" in message and self.context is not None:
                self.context.request_stop(message["stop"], message["reason"])
            elif "stack" in message:  # `jobengine stack`: where the job (the main thread) is
                send(self.connection, self.lock, {"stack": main_thread_stack()})

    def _on_terminate(self, number: int, frame: FrameType | None) -> None:
        """Step 3 of the ladder: SIGTERM raises JobCanceled in the job, even in a sleep."""
        if self.context is None or not self.context.running:
            os._exit(0)
        raise JobCanceled(self.context.stop_reason or "terminated")

    def _send_line(self, line: LogLine) -> None:
        send(self.connection, self.lock, {"log": [line.level, line.text, line.at]})

    def _send_progress(self, fraction: float, message: str | None) -> None:
        send(self.connection, self.lock, {"progress": fraction, "message": message})


def frames_of(frame: FrameType | None) -> list[list[Any]]:
    """A thread's frames, outermost first: [file, line, function, source text]."""
    summary = traceback.extract_stack(frame) if frame is not None else []
    return [[item.filename, item.lineno, item.name, item.line] for item in summary]


def main_thread_stack() -> list[list[Any]]:
    return frames_of(sys._current_frames().get(threading.main_thread().ident or 0))


def _encode(outcome: Outcome) -> dict[str, Any]:
    return {**asdict(outcome), "status": outcome.status.value}


def die_with_parent() -> None:
    """Linux: SIGKILL this child when the worker that started it dies, even mid C call."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if str(os.getppid()) != os.environ.get(PARENT_VARIABLE, str(os.getppid())):
        os._exit(1)  # the worker died before the line above ran


def main(arguments: list[str]) -> None:
    """Entry point of a pooled child (see executors.CHILD_COMMAND), in its own session."""
    die_with_parent()
    sys.path[:0] = [p for p in json.loads(os.environ.get(PATH_VARIABLE, "[]")) if p not in sys.path]
    Child(Connection(int(arguments[0]))).serve()
