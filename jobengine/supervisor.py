"""`jobengine run`: keeps N worker processes alive on one host, restarts, drains and rolls them."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from jobengine.process import describe_exit

if TYPE_CHECKING:
    from jobengine.watch import WorkerWatch

log = logging.getLogger("jobengine.supervisor")
STABLE_AFTER = 10.0  # a worker that ran this long before dying restarts after the first delay
FALLBACK_READY = 3.0  # without the database, a replacement alive this long counts as ready
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)

# Runs in the child before the worker: asks the kernel to send SIGTERM when the supervisor dies
# (even by SIGKILL), so no worker outlives it unsupervised, then becomes the worker (same pid).
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('the supervisor ended before this worker started')\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


@dataclass(frozen=True)
class SupervisorSettings:
    workers: int = 2
    restart_delay: float = 1.0
    restart_delay_max: float = 60.0
    ready_timeout: float = 60.0
    stop_timeout: float = 45.0  # after its first SIGTERM, a worker gets this long, then SIGKILL


@dataclass
class Child:
    """One worker process and what the supervisor has asked of it."""

    slot: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    terms: int = 0
    term_sent: float | None = None
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self) -> None:
        """Send SIGTERM: the first asks the worker to drain, the second to stop waiting."""
        self.terms += 1
        if self.term_sent is None:
            self.term_sent = time.monotonic()
        _send(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the worker and everything in its process group."""
        self.killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            _send(self.pid, signal.SIGKILL)


def _send(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited; the next poll reaps it
        os.kill(pid, number)


def worker_command(arguments: Sequence[str]) -> list[str]:
    """The child's command line: `python -m jobengine ...`, behind LAUNCHER on Linux."""
    command = ["-m", "jobengine", *arguments]
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *command]
    return [sys.executable, *command]


class Supervisor:
    """The main loop: starts the workers, waits for signals and exits, and acts on them.

    Signals are only noted by their handlers (through a wake-up pipe) and acted on here, in
    the loop, so nothing happens half-way inside a handler.
    """

    def __init__(
        self,
        arguments: Callable[[int], list[str]],
        settings: SupervisorSettings,
        environment: dict[str, str] | None = None,
        watch: WorkerWatch | None = None,
    ) -> None:
        self.arguments, self.settings = arguments, settings
        self.environment, self.watch = environment, watch
        self.slots: dict[int, Child] = {}
        self.retiring: list[Child] = []
        self.replacement: Child | None = None
        self.rolling: list[int] = []
        self.due: dict[int, float] = {}
        self.delays: dict[int, float] = {}
        self.stops = 0
        self.killed = False
        self.wake_read, self.wake_write = os.pipe()

    def run(self) -> int:
        """Supervise until a stop signal and every worker has exited; 0 if all drained."""
        previous = self._install_signals()
        if self.watch is not None:
            self.watch.start()
        try:
            log.info("supervisor %s starting %s worker(s)", os.getpid(), self.settings.workers)
            for slot in range(1, self.settings.workers + 1):
                self.slots[slot] = self._spawn(slot)
            while not self.stops or self.children():
                self._wait(self._timeout())
                self._reap_exits()
                self._restart_due()
                self._advance_roll()
                self._enforce_deadlines()
        finally:
            self._restore_signals(previous)
            if self.watch is not None:
                self.watch.stop()
        log.info("supervisor %s stopped", os.getpid())
        return 1 if self.killed else 0

    def children(self) -> list[Child]:
        extra = [self.replacement] if self.replacement is not None else []
        return [*self.slots.values(), *self.retiring, *extra]

    def _spawn(self, slot: int) -> Child:
        process = subprocess.Popen(
            worker_command(self.arguments(slot)),
            env=self.environment,
            process_group=0,  # terminal signals reach only the supervisor, which forwards them
        )
        log.info("worker %s started: pid %s", slot, process.pid)
        if self.watch is not None:
            self.watch.expect(process.pid)
        return Child(slot, process)

    def _timeout(self) -> float:
        now = time.monotonic()
        upcoming = [at - now for at in self.due.values()]
        waiting = 0.1 if self.replacement is not None or self.stops else 1.0
        return max(0.0, min([waiting, *upcoming]))

    def _install_signals(self) -> tuple[int, list[Any]]:
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        wakeup = signal.set_wakeup_fd(self.wake_write)
        return wakeup, [signal.signal(number, _note_only) for number in HANDLED]

    def _restore_signals(self, previous: tuple[int, list[Any]]) -> None:
        wakeup, handlers = previous
        for number, handler in zip(HANDLED, handlers, strict=True):
            signal.signal(number, handler)
        signal.set_wakeup_fd(wakeup)
        os.close(self.wake_read)
        os.close(self.wake_write)

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal arrives or `timeout` passes; act on the signals that came."""
        readable, _, _ = select.select([self.wake_read], [], [], timeout)
        if not readable:
            return
        try:
            received = os.read(self.wake_read, 512)
        except BlockingIOError:
            return
        for number in received:
            self.on_signal(number)

    def on_signal(self, number: int) -> None:
        if number in (signal.SIGTERM, signal.SIGINT):
            self.stop(signal.Signals(number).name)
        elif number == signal.SIGHUP:
            self.start_roll()

    def stop(self, why: str) -> None:
        """First: drain every worker. Second: tell them to stop waiting. Third: kill them."""
        self.stops += 1
        self.due.clear()
        self.rolling.clear()
        children = self.children()
        if self.stops <= 2:
            if self.stops == 1:
                log.info("%s: draining %s worker(s)", why, len(children))
            else:
                log.warning("%s again: workers stop waiting for their jobs", why)
            for child in children:
                if child.terms < self.stops:  # one draining since a SIGHUP is not hurried
                    child.terminate()
        else:
            log.error("%s a third time: killing %s worker(s)", why, len(children))
            self._kill(children)

    def _kill(self, children: list[Child]) -> None:
        self.killed = self.killed or bool(children)
        for child in children:
            child.kill()

    def _reap_exits(self) -> None:
        for child in self.children():
            code = child.process.poll()
            if code is None:
                continue
            how = describe_exit(code)
            ran = time.monotonic() - child.started
            if self.watch is not None:
                self.watch.ended(child.pid, how)
            if child in self.retiring:
                self.retiring.remove(child)
                log.info("worker %s (pid %s) %s after draining", child.slot, child.pid, how)
            elif child is self.replacement:
                self._abandon_roll(child, f"{how} before it was ready")
            else:
                del self.slots[child.slot]
                self._schedule_restart(child, how, ran)

    def _schedule_restart(self, child: Child, how: str, ran: float) -> None:
        if self.stops:
            log.info("worker %s (pid %s) %s", child.slot, child.pid, how)
            return
        delay = self.delays.get(child.slot, self.settings.restart_delay)
        if ran >= STABLE_AFTER:
            delay = self.settings.restart_delay
        self.delays[child.slot] = min(self.settings.restart_delay_max, delay * 2)
        self.due[child.slot] = time.monotonic() + delay
        message = "worker %s (pid %s) %s after %.1f s; restarting it in %.1f s"
        log.warning(message, child.slot, child.pid, how, ran, delay)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, at in sorted(self.due.items()):
            if at <= now and not self.stops:
                del self.due[slot]
                self.slots[slot] = self._spawn(slot)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        late = [
            child
            for child in self.children()
            if not child.killed
            and child.term_sent is not None
            and now - child.term_sent > self.settings.stop_timeout
        ]
        message = "worker %s (pid %s) did not stop %.0f s after SIGTERM; killing it"
        for child in late:
            log.error(message, child.slot, child.pid, self.settings.stop_timeout)
        self._kill(late)

    def start_roll(self) -> None:
        """SIGHUP: replace the workers one by one, each old one draining once its
        replacement is ready, so capacity never drops to zero and no job is lost."""
        if self.stops:
            return
        if self.rolling or self.replacement is not None:
            log.info("SIGHUP during a rolling restart: starting it over from the first worker")
        else:
            log.info("SIGHUP: restarting %s worker(s) one by one", len(self.slots))
        self.rolling = sorted(self.slots)

    def _advance_roll(self) -> None:
        if self.stops:
            return
        if self.replacement is None:
            while self.rolling and self.replacement is None:
                slot = self.rolling.pop(0)
                if slot in self.slots:
                    self.replacement = self._spawn(slot)
            return
        replacement = self.replacement
        if self._ready(replacement):
            old = self.slots.get(replacement.slot)  # None if it died during the roll
            self.slots[replacement.slot], self.replacement = replacement, None
            self.due.pop(replacement.slot, None)
            if old is not None:
                self.retiring.append(old)
                old.terminate()
            message = "worker %s: pid %s ready, pid %s draining"
            log.info(message, replacement.slot, replacement.pid, old.pid if old else "-")
        elif time.monotonic() - replacement.started > self.settings.ready_timeout:
            self._abandon_roll(replacement, f"not ready in {self.settings.ready_timeout:.0f} s")
            self.retiring.append(replacement)
            replacement.terminate()

    def _abandon_roll(self, replacement: Child, what: str) -> None:
        """Keep the old worker of the replacement's slot and stop the rolling restart."""
        self.replacement, self.rolling = None, []
        message = "replacement for worker %s (pid %s) %s; keeping the old worker and stopping"
        log.error(message + " the rolling restart", replacement.slot, replacement.pid, what)

    def _ready(self, child: Child) -> bool:
        """Registered in the workers table; without a database, alive for FALLBACK_READY s."""
        if self.watch is not None and self.watch.usable:
            return self.watch.registered(child.pid)
        return time.monotonic() - child.started >= FALLBACK_READY


def _note_only(number: int, frame: FrameType | None) -> None:
    """The signal's number is already in the wake-up pipe; the loop acts on it."""
