"""The supervisor's view of the workers table: children registered, and jobs of those that end."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from jobengine.engine import Engine
from jobengine.reaper import Reaper, Steadiness

log = logging.getLogger("jobengine.supervisor")
# The supervisor also reaps, this often: it catches what a dead worker's last transaction
# committed after the worker was declared dead, and keeps reaping while every worker is down.
REAP_EVERY = 1.0


class WorkerWatch:
    """Runs in a thread of its own, so that a slow or absent database never delays a signal.

    It answers which children have registered (a replacement is ready), and recovers the jobs
    of a child seen to end at once: its death is certain, no need to wait for its silence. At
    start-up it recovers what a previous run on this host left, and it reaps like a worker.
    """

    def __init__(self, engine: Engine, dead_after: float) -> None:
        self.engine, self.dead_after = engine, dead_after
        self.host = socket.gethostname()
        self.lock = threading.Lock()
        self.awaited: set[int] = set()
        self.seen: set[int] = set()
        self.exits: list[tuple[int, str]] = []
        self.usable = True
        self.reaper: Reaper | None = None
        self.next_reap = 0.0
        self.steadiness = Steadiness(longest_gap=5 * REAP_EVERY)
        self.wake, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="worker-watch")

    def start(self) -> None:
        self.wake.set()  # the first step (the start-up recovery) at once
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.wake.set()
        self.thread.join(5)

    def expect(self, pid: int) -> None:
        with self.lock:
            self.awaited.add(pid)
        self.wake.set()

    def registered(self, pid: int) -> bool:
        with self.lock:
            return pid in self.seen

    def ended(self, pid: int, how: str) -> None:
        with self.lock:
            self.exits.append((pid, how))
            self.awaited.discard(pid)
        self.wake.set()

    def _loop(self) -> None:
        failures = 0
        while not self.done.is_set():
            self.wake.wait(0.2)
            self.wake.clear()
            try:
                self._step()
                failures, self.usable = 0, True
                self.steadiness.worked()
            except Exception as error:
                self.steadiness.failed()
                failures += 1
                self.usable = False
                if failures == 1:
                    log.warning("supervisor cannot use the workers table: %s", error)
                self.done.wait(min(5.0, 0.2 * 2**failures))
        with self.lock:
            self.exits.clear()

    def _first_reaper(self) -> Reaper:
        """At start-up, recover what the workers of a previous run on this host left."""
        engine, actor = self.engine, f"supervisor {self.host}:{os.getpid()}"
        reaper = Reaper(engine.store, engine.registry, actor, self.dead_after, engine.clock.now)
        reaper.recover_earlier_workers(self.host, "")
        self.reaper = reaper
        return reaper

    def _step(self) -> None:
        with self.lock:
            exits, self.exits = self.exits, []
            awaited = set(self.awaited)
        store = self.engine.store
        reaper = self.reaper or self._first_reaper()
        for number, (pid, how) in enumerate(exits):
            try:
                reaper.recover_process(self.host, pid, f"its process {how}")
            except Exception:
                with self.lock:
                    self.exits = exits[number:] + self.exits
                raise
        if awaited:
            alive = {worker.pid for worker in store.workers.on_host(self.host)} & awaited
            with self.lock:
                self.seen |= alive
                self.awaited -= alive
        steady = self.steadiness.steady_for() >= self.dead_after  # else peers only look dead
        if steady and time.monotonic() >= self.next_reap:
            self.next_reap = time.monotonic() + REAP_EVERY
            reaper.reap()
