"""Live Python stacks of running jobs: asked by `jobengine stack` through the commands table and
answered by the worker that runs the job; on SIGUSR1 a worker logs every thread's stack."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from jobengine.clock import Clock
from jobengine.errors import DatabaseUnavailable, JobEngineError
from jobengine.executors import Executor, ProcessExecutor, Running
from jobengine.process import frames_of
from jobengine.store import Store
from jobengine.store.diagnosis import COMMAND_NOTICE, Command, CommandStore

log = logging.getLogger("jobengine.worker")
STACK = "stack"  # the kind of command that asks for a job's stack
CHILD_ANSWER = 5.0  # seconds the child of a process-isolated job gets to send its stack
FORGET_AFTER = 3600.0  # seconds after which commands nobody reads are deleted
Frames = list[list[Any]]  # [file, line, function, source text], outermost first
Snapshot = Callable[[], Sequence[Running]]
__all__ = ["COMMAND_NOTICE", "CommandDesk", "ask_stack", "dump_to_log", "install_dump_signal"]


def from_job_function(frames: Frames, function: Callable[..., Any]) -> Frames:
    """The frames from the job function inwards (the engine's own frames around it dropped);
    all of them when the function is not among them (a wrapped function)."""
    code = getattr(function, "__code__", None)
    for index, (filename, _, name, _) in enumerate(frames):
        if code is not None and filename == code.co_filename and name == code.co_name:
            return frames[index:]
    return frames


def render(frames: Frames) -> str:
    """Frames as Python prints a traceback (most recent call last)."""
    lines = []
    for filename, line, name, text in frames:
        lines.append(f'  File "{filename}", line {line}, in {name}')
        if text:
            lines.append(f"    {text.strip()}")
    return "\n".join(lines)


def job_stack(
    running: Running, executors: dict[str, Executor], timeout: float = CHILD_ANSWER
) -> dict[str, Any]:
    """Where a running job is now: its frames, from its thread or from its child process."""
    job = running.job
    answer: dict[str, Any] = {"job_id": job.id, "attempt": job.attempt, "type": job.type}
    answer["isolation"] = running.job_type.isolation
    executor = executors.get(running.job_type.isolation)
    if isinstance(executor, ProcessExecutor):
        found = executor.stack(running, timeout)
        if found is None:
            return {**answer, "error": f"the process of job {job.id} did not send its stack"}
        answer["pid"], frames = found
        if not running.began:
            answer["note"] = "its process has not started the job yet"
    else:
        thread_id = running.context.thread_id
        frame = sys._current_frames().get(thread_id) if thread_id is not None else None
        if frame is None:
            return {**answer, "error": f"job {job.id} is not running in a thread now"}
        answer["thread"] = _thread_name(thread_id)
        frames = frames_of(frame)
    frames = from_job_function(frames, running.job_type.function)
    return {**answer, "frames": frames, "text": render(frames)}


def _thread_name(ident: int | None) -> str:
    return next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))


def every_stack(active: Sequence[Running], executors: dict[str, Executor]) -> str:
    """Every thread of this process, labelled with the job it runs, then the stacks of the
    children of process-isolated jobs."""
    by_thread = {r.context.thread_id: r for r in active if r.context.thread_id is not None}
    sections = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        label = f"thread {_thread_name(ident)}"
        running = by_thread.get(ident)
        if running is not None:
            job = running.job
            label += f": job {job.id} ({job.type}) attempt {job.attempt}"
        sections.append(f"{label}\n{render(frames_of(frame))}")
    for running in active:
        if isinstance(executors.get(running.job_type.isolation), ProcessExecutor):
            answer = job_stack(running, executors, timeout=1.0)
            where = f"process {answer['pid']}" if "pid" in answer else "its process"
            text = answer.get("text") or answer.get("error", "")
            sections.append(f"job {running.job.id} ({running.job.type}) in {where}\n{text}")
    return "\n\n".join(sections)


class CommandDesk:
    """A worker's side of the commands table: reads its commands when notified of one and
    once a heartbeat interval, and answers each in a thread of its own (a child process may
    take a moment), so that the worker's loop never waits for an answer."""

    def __init__(
        self,
        store: Store,
        worker: str,
        interval: float,
        executors: dict[str, Executor],
        snapshot: Snapshot,
        clock: Clock,
    ) -> None:
        self.commands = CommandStore(store.database)
        self.worker, self.interval, self.executors = worker, interval, executors
        self.snapshot, self.clock = snapshot, clock
        self.notice = threading.Event()
        self.next_read = 0.0
        self.answering: set[int] = set()
        self.lock = threading.Lock()

    def poll(self) -> None:
        """Read and answer the commands for this worker, if notified or due."""
        now = time.monotonic()
        if not self.notice.is_set() and now < self.next_read:
            return
        self.notice.clear()
        self.next_read = now + self.interval
        with self.lock:
            fresh = [c for c in self.commands.unanswered(self.worker) if c.id not in self.answering]
            self.answering |= {command.id for command in fresh}
        for command in fresh:
            threading.Thread(
                target=self._answer, args=(command,), daemon=True, name="command"
            ).start()

    def _answer(self, command: Command) -> None:
        try:
            self.commands.answer(command.id, self.answer_of(command), self.clock.now())
        except (DatabaseUnavailable, JobEngineError) as error:
            log.warning("command %s (%s) not answered: %s", command.id, command.kind, error)
        finally:
            with self.lock:
                self.answering.discard(command.id)

    def answer_of(self, command: Command) -> dict[str, Any]:
        if command.kind != STACK:
            return {"error": f"unknown command {command.kind!r}"}
        running = next((r for r in self.snapshot() if r.job.id == command.job_id), None)
        if running is None:
            return {"error": f"job {command.job_id} is not running on worker {self.worker}"}
        return job_stack(running, self.executors)


def ask_stack(store: Store, worker: str, job_id: int, clock: Clock, timeout: float) -> Any:
    """Ask `worker` for the stack of job `job_id`; its answer (a dict), or None after
    `timeout` seconds without one."""
    commands = CommandStore(store.database)
    command_id = commands.ask(worker, STACK, job_id, clock.now())
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            command = commands.get(command_id)
            if command is not None and command.answer is not None:
                return command.answer
            time.sleep(0.05)
        return None
    finally:
        commands.forget(command_id, clock.now() - FORGET_AFTER)


def install_dump_signal(dump: Callable[[], None]) -> Callable[[], None]:
    """SIGUSR1 calls `dump` (in a thread of its own, not inside the signal handler); return
    what undoes it. Nothing is installed outside the main thread or over an app's own handler."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
        return lambda: None

    def on_signal(number: int, frame: FrameType | None) -> None:
        threading.Thread(target=dump, daemon=True, name="stack-dump").start()

    previous = signal.signal(signal.SIGUSR1, on_signal)

    def restore() -> None:
        signal.signal(signal.SIGUSR1, previous)

    return restore


def dump_to_log(worker: str, snapshot: Snapshot, executors: dict[str, Executor]) -> None:
    """Write every thread's stack, labelled with job ids, to the worker's log."""
    try:
        text = every_stack(snapshot(), executors)
    except Exception:  # a dump must never take the worker down
        log.exception("SIGUSR1: could not gather the stacks")
        return
    log.warning("SIGUSR1: the stack of every thread of worker %s:\n%s", worker, text)
