"""Where jobs run: pooled threads or pooled child processes, and their cancel-ladder steps."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from jobengine.context import JobCanceled, JobContext, StopKind
from jobengine.joblog import JobLog
from jobengine.model import Job, Status
from jobengine.process import PARENT_VARIABLE, PATH_VARIABLE, describe_exit, receive, send
from jobengine.registry import JobType
from jobengine.runner import Outcome, describe_error, run_job

log = logging.getLogger("jobengine.worker")
# Not `-m jobengine.process`: the package imports that module first, and runpy warns.
CHILD_COMMAND = "import sys; from jobengine.process import main; main(sys.argv[1:])"


@dataclass
class Running:
    """A job this worker has started: what it is, how it runs, and how far its stop has got."""

    job: Job
    job_type: JobType
    context: JobContext
    log: JobLog
    started: float
    deadline: float | None
    stop_requested: float | None = None
    step: int = 0
    last_push: float = 0.0
    forwarded: bool = False
    began: bool = False


Finished = Callable[[Running, Outcome], None]


class Executor(Protocol):
    def start(self, running: Running, finished: Finished) -> None:
        """Run the job; call `finished` exactly once with its outcome."""

    def escalate(self, running: Running, now: float) -> str | None:
        """Take the next ladder step if it is due; describe it, or None if nothing was done."""

    def close(self, wait: float) -> None:
        """Stop the executor's threads or processes."""


class ThreadPool:
    """Reusable threads: each running job gets its own without paying thread start-up."""

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self.tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.lock = threading.Lock()

    def start(self, task: Callable[[], None]) -> None:
        """Run `task` on an idle thread, or a new one while the pool is not full."""
        with self.lock:
            if self.idle == 0 and len(self.threads) < self.size:
                name = f"{self.name}-{len(self.threads) + 1}"
                thread = threading.Thread(target=self._loop, daemon=True, name=name)
                self.threads.append(thread)
                thread.start()
            else:
                self.idle -= 1
        self.tasks.put(task)

    def _loop(self) -> None:
        while True:
            try:
                task = self.tasks.get()
                if task is None:
                    return
                task()
            except JobCanceled:
                pass  # an interrupt that landed after its job ended
            except BaseException:  # the thread lives on: it is the pool's capacity
                log.exception("a job thread's task failed")
            with self.lock:
                self.idle += 1

    def close(self, wait: float) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        deadline = time.monotonic() + wait
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class ThreadExecutor:
    """Runs each job in a pooled thread; stops it by flag, then by an exception in its thread."""

    def __init__(self, concurrency: int, cancel_grace: float) -> None:
        self.pool = ThreadPool(concurrency, "job")
        self.cancel_grace = cancel_grace

    def start(self, running: Running, finished: Finished) -> None:
        def task() -> None:
            try:
                outcome = run_job(running.job_type, running.job.args, running.context, running.log)
            except BaseException as error:  # run_job never raises; if it ever does, say so
                outcome = crashed(error)
            finished(running, outcome)

        self.pool.start(task)

    def escalate(self, running: Running, now: float) -> str | None:
        if running.stop_requested is None or now - running.stop_requested < grace(running, self):
            return None
        if now - running.last_push < self.cancel_grace:
            return None
        running.last_push = now
        if not running.context.interrupt() or running.step >= 2:
            return None  # pushed again quietly: code that swallowed it gets it once more
        running.step = 2
        return "step 2: raised JobCanceled inside the job's thread"

    def close(self, wait: float) -> None:
        self.pool.close(wait)


def crashed(error: BaseException) -> Outcome:
    """The outcome when the engine's own code around a job failed: FAILURE saying how."""
    errors = f"the engine failed running this job: {describe_error(error)}"
    return Outcome(Status.FAILURE, errors=errors)


def grace(running: Running, executor: ThreadExecutor | ProcessExecutor) -> float:
    """Seconds between asking a job to stop and forcing it; none left at shutdown."""
    return 0.0 if running.context.stop_kind is StopKind.SHUTDOWN else executor.cancel_grace


class ChildProcess:
    """One pooled child process (a fresh interpreter in its own session) and the pipe to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        parent = str(os.getpid())
        environment = {**os.environ, PATH_VARIABLE: json.dumps(sys.path), PARENT_VARIABLE: parent}
        self.popen = subprocess.Popen(
            [sys.executable, "-c", CHILD_COMMAND, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=environment,
            start_new_session=True,
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        self.lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL the child's whole process group (it leads one): stops anything it runs."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1.0)
        self.connection.close()


class ProcessExecutor:
    """Runs each job in a reused child process; stops it by flag, SIGTERM, then SIGKILL."""

    def __init__(
        self, concurrency: int, cancel_grace: float, kill_grace: float, log_cap: int
    ) -> None:
        self.cancel_grace, self.kill_grace, self.log_cap = cancel_grace, kill_grace, log_cap
        self.pool = ThreadPool(concurrency, "process-job")
        self.idle: list[ChildProcess] = []
        self.busy: dict[int, ChildProcess] = {}
        self.lock = threading.Lock()
        self.stacks: dict[int, queue.SimpleQueue[list[Any]]] = {}  # `jobengine stack` answers

    def start(self, running: Running, finished: Finished) -> None:
        def task() -> None:
            try:
                outcome = self._supervise(running)
            except BaseException as error:
                outcome = crashed(error)
            finished(running, outcome)

        self.pool.start(task)

    def _take(self) -> ChildProcess:
        with self.lock:
            while self.idle:
                child = self.idle.pop()
                if child.popen.poll() is None:  # it is still alive
                    return child
        return ChildProcess()

    def _supervise(self, running: Running) -> Outcome:
        job, function = running.job, running.job_type.function
        try:
            child = self._take()
        except Exception as error:  # EMFILE, EAGAIN, out of memory: the job never started
            errors = f"the job's process could not be started: {describe_error(error)}"
            return Outcome(Status.FAILURE, errors=errors)
        request = {
            "job": job.id,
            "attempt": job.attempt,
            "type": job.type,
            "args": job.args,
            "module": function.__module__,
            "function": function.__qualname__,
            "log_cap": running.log.cap,
        }
        with self.lock:
            self.busy[job.id] = child
        try:
            send(child.connection, child.lock, request)
            outcome = self._collect(child, running)
        except (EOFError, OSError):
            outcome = self._died(child, running)
        finally:
            with self.lock:
                self.busy.pop(job.id, None)
            self.stacks.pop(job.id, None)
        if outcome.stopped:
            child.kill()
        else:
            with self.lock:
                self.idle.append(child)
        return outcome

    def _collect(self, child: ChildProcess, running: Running) -> Outcome:
        while True:
            message = receive(child.connection)
            if "log" in message:
                level, text, _ = message["log"]
                running.log.write(level, text)
            elif "started" in message:
                running.began = True
                if running.job.timeout:  # the timeout counts from here, not from the spawn
                    running.deadline = time.monotonic() + running.job.timeout
            elif "progress" in message:
                running.context.progress(message["progress"], message["message"])
            elif "stack" in message:
                self.stacks.setdefault(running.job.id, queue.SimpleQueue()).put(message["stack"])
            elif "outcome" in message:
                fields = message["outcome"]
                return Outcome(Status(fields.pop("status")), **fields)

    def _died(self, child: ChildProcess, running: Running) -> Outcome:
        try:
            how = describe_exit(child.popen.wait(1.0))
        except subprocess.TimeoutExpired:
            how = "stopped answering"
        end = f"the job's process {child.pid} {how}"
        reason = running.context.stop_reason
        return Outcome(Status.FAILURE, errors=f"{reason}; {end}" if reason else end, stopped=True)

    def escalate(self, running: Running, now: float) -> str | None:
        with self.lock:
            child = self.busy.get(running.job.id)
        if child is None or running.stop_requested is None:
            return None
        if running.began and not running.forwarded:
            running.forwarded = True
            kind, reason = running.context.stop_kind, running.context.stop_reason
            with contextlib.suppress(OSError):
                send(child.connection, child.lock, {"stop": kind, "reason": reason})
        elapsed = now - running.stop_requested
        if running.step < 3 and elapsed >= grace(running, self):
            running.step = 3
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            return f"step 3: sent SIGTERM to the job's process {child.pid}"
        # kill_grace counts from the request, so every process job ends within it (plus a turn)
        if running.step < 4 and elapsed >= max(grace(running, self), self.kill_grace):
            running.step = 4
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            return f"step 4: killed the job's process group {child.pid} with SIGKILL"
        return None

    def stack(self, running: Running, timeout: float) -> tuple[int, list[Any]] | None:
        """(the child's pid, the stack of its main thread, where the job runs), asked over its
        pipe; None if the job has no child now or it does not answer within `timeout`."""
        with self.lock:
            child = self.busy.get(running.job.id)
        if child is None:
            return None
        answers = self.stacks.setdefault(running.job.id, queue.SimpleQueue())
        while not answers.empty():  # a late answer to an earlier question
            answers.get_nowait()
        try:
            send(child.connection, child.lock, {"stack": True})
            return child.pid, answers.get(timeout=timeout)
        except (OSError, queue.Empty):
            return None

    def close(self, wait: float) -> None:
        with self.lock:
            children = self.idle + list(self.busy.values())
            self.idle = []
        for child in children:
            child.kill()
        self.pool.close(wait)
