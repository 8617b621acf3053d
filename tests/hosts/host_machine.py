"""One host of a test: its namespace, name, clock and `jobengine run`; kill, pause, resume it.

A host is a network namespace, its own host name (a UTS namespace per program started), an
optional libfaketime clock, and the supervisor it runs; operations reach its whole tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from host_clock import SITE_FOLDER, HostClock
from host_network import namespace_members, signal_all
from waiting import wait_for

# Give the host its own UTS namespace and name, then become the program (no extra process).
NAMING_SCRIPT = 'hostname "$0" && exec "$@"'


@dataclass
class Timeline:
    """What the test did to a host, in the machine's monotonic time (true on every host)."""

    kills: list[float] = field(default_factory=list)
    process_kills: dict[int, float] = field(default_factory=dict)  # one process, by pid
    pauses: list[tuple[float, float]] = field(default_factory=list)  # (stopped, resumed)
    paused_since: float | None = None

    def paused_within(self, start: float, end: float) -> float:
        """Seconds of [start, end] during which the host was stopped."""
        spans = [*self.pauses]
        if self.paused_since is not None:
            spans.append((self.paused_since, end))
        return sum(max(0.0, min(end, resumed) - max(start, stopped)) for stopped, resumed in spans)


class Host:
    """A host of the test; `environment` is what every process started on it gets."""

    def __init__(
        self,
        number: int,
        namespace: str,
        folder: Path,
        environment: dict[str, str],
        clock: HostClock | None,
    ) -> None:
        self.number, self.namespace, self.clock = number, namespace, clock
        self.name = f"host-{number}"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        python_path = [str(SITE_FOLDER)] if clock else []
        python_path += [environment.get("PYTHONPATH", "")]
        self.environment = {
            **environment,
            **(clock.environment() if clock else {}),
            "PYTHONPATH": os.pathsep.join(part for part in python_path if part),
        }
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.timeline = Timeline()

    def command(self, *program: str) -> list[str]:
        """`program` run inside this host: its network namespace, its host name, its clock."""
        preload = ["env", self.clock.preload()] if self.clock else []
        naming = ["unshare", "--uts", "--", "sh", "-c", NAMING_SCRIPT, self.name]
        return ["ip", "netns", "exec", self.namespace, *naming, *preload, *program]

    def python(self, code: str, timeout: float = 30) -> str:
        """Run Python `code` on this host; its standard output."""
        result = subprocess.run(
            self.command(sys.executable, "-c", code),
            env=self.environment,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"python on {self.name} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self, arguments: list[str]) -> subprocess.Popen[bytes]:
        """Start `python -m jobengine ARGUMENTS` (the supervisor) on this host."""
        assert self.supervisor is None or self.supervisor.poll() is not None, "already running"
        self.stopping = False
        with open(self.folder / "run.out", "ab") as output:
            self.supervisor = subprocess.Popen(
                self.command(sys.executable, "-m", "jobengine", *arguments),
                env=self.environment,
                cwd=self.folder,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return self.supervisor

    def members(self) -> list[int]:
        """Every process of this host, however it was started (its network namespace's)."""
        return namespace_members(self.namespace)

    def pause(self) -> list[int]:
        """SIGSTOP every process of the host, repeating until none is left running (a child
        forked meanwhile is caught by the next round); the pids stopped."""
        deadline = time.monotonic() + 10
        while running := [pid for pid in self.members() if not _stopped(pid)]:
            signal_all(running, signal.SIGSTOP)
            assert time.monotonic() < deadline, f"{self.name}: {running} would not stop"
            time.sleep(0.002)
        self.timeline.paused_since = time.monotonic()
        return self.members()

    def resume(self) -> None:
        signal_all(self.members(), signal.SIGCONT)
        if self.timeline.paused_since is not None:
            self.timeline.pauses.append((self.timeline.paused_since, time.monotonic()))
            self.timeline.paused_since = None

    def kill(self) -> list[int]:
        """SIGKILL the whole host at once: stopped first so that nothing forks meanwhile."""
        was_paused = self.timeline.paused_since is not None
        victims = self.pause() if not was_paused else self.members()
        self.timeline.kills.append(time.monotonic())
        signal_all(victims, signal.SIGKILL)
        while survivors := self.members():
            signal_all(survivors, signal.SIGKILL)
            time.sleep(0.01)
        self.resume()  # closes the pause on the timeline; nothing is left to continue
        if self.supervisor is not None:
            self.supervisor.wait(10)
        return victims

    def kill_process(self, pid: int) -> None:
        """SIGKILL one process of the host (a worker, say), noting when."""
        assert pid in self.members(), f"process {pid} is not on {self.name}"
        self.timeline.process_kills[pid] = time.monotonic()
        os.kill(pid, signal.SIGKILL)

    def request_stop(self) -> None:
        """SIGTERM the supervisor once: its workers drain (a second SIGTERM would hurry them)."""
        if self.supervisor is not None and self.supervisor.poll() is None and not self.stopping:
            self.supervisor.send_signal(signal.SIGTERM)
            self.stopping = True

    def terminate(self, timeout: float = 60) -> int | None:
        """Drain the host (SIGTERM) and wait for every process of it to end; the exit code."""
        if self.supervisor is None:
            return None
        self.request_stop()
        code = self.supervisor.wait(timeout)
        wait_for(lambda: not self.members(), 10, f"every process of {self.name} to exit")
        return code

    def close(self) -> None:
        """Whatever state the test left the host in: resume it, kill it, reap the supervisor."""
        with contextlib.suppress(Exception):
            self.kill()


def _stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
