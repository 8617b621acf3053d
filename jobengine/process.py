"""The child side of process isolation: a reusable process that runs one job at a time."""

from __future__ import annotations

import importlib
import json
import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from jobengine import joblog
from jobengine.context import JobCanceled, JobContext
from jobengine.joblog import JobLog
from jobengine.registry import JobType
from jobengine.runner import Outcome, run_job
from jobengine.store import LogLine


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
        os.setpgrp()  # its own process group, so a kill reaches whatever the job started
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        joblog.install()
        threading.Thread(target=self._read, daemon=True, name="control").start()
        while (message := self.jobs.get()) is not None:
            self.run(message)

    def run(self, message: dict[str, Any]) -> None:
        function = resolve(message["module"], message["function"])
        job_type = JobType(name=message["type"], function=function)
        job_log = JobLog(message["job"], message["attempt"], self._send_line, message["log_cap"])
        self.context = JobContext(
            message["job"],
            message["attempt"],
            message["type"],
            _logger(message["type"]),
            self._send_progress,
        )
        send(self.connection, self.lock, {"started": True})
        outcome = run_job(job_type, message["args"], self.context, job_log)
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

    def _on_terminate(self, number: int, frame: FrameType | None) -> None:
        """Step 3 of the ladder: SIGTERM raises JobCanceled in the job, even in a sleep."""
        if self.context is None or not self.context.running:
            os._exit(0)
        raise JobCanceled(self.context.stop_reason or "terminated")

    def _send_line(self, line: LogLine) -> None:
        send(self.connection, self.lock, {"log": [line.level, line.text, line.at]})

    def _send_progress(self, fraction: float, message: str | None) -> None:
        send(self.connection, self.lock, {"progress": fraction, "message": message})


def _logger(job_type: str) -> Any:
    from jobengine.worker import job_logger

    return job_logger(job_type)


def _encode(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "output": outcome.output,
        "errors": outcome.errors,
        "result_json": outcome.result_json,
        "stopped": outcome.stopped,
    }


def child_main(connection: Connection) -> None:
    """Entry point of a pooled child process."""
    Child(connection).serve()
