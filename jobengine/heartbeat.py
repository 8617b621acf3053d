"""A worker's presence: its row in `workers`, its heartbeats, and the peers it reaps."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from importlib.metadata import version

from jobengine.reaper import Reaper
from jobengine.registry import Registry
from jobengine.settings import Settings
from jobengine.store import Store, WorkerRecord
from jobengine.store.workers import DRAINING, RUNNING

log = logging.getLogger("jobengine.worker")
REAP_INTERVAL = 1.0  # how often every worker looks for dead peers (one indexed read)


class Heartbeat:
    """Registers the worker, beats every heartbeat interval, and reaps only while it is fresh."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        worker_id: str,
        settings: Settings,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.id, self.settings, self.clock = store, worker_id, settings, clock
        self.reaper = Reaper(store, registry, worker_id, settings.dead_after, clock)
        self.next_beat = self.next_reap = 0.0

    def register(self) -> None:
        """Write the worker's row, then recover what earlier workers of this host left."""
        now, host = self.clock(), socket.gethostname()
        self.store.workers.register(
            WorkerRecord(
                self.id,
                host,
                os.getpid(),
                now,
                now,
                list(self.settings.queues),
                self.settings.concurrency,
                version("jobengine"),
                RUNNING,
            )
        )
        log.info(
            "worker %s started: queues %s, concurrency %s",
            self.id,
            ",".join(self.settings.queues) or "all",
            self.settings.concurrency,
        )
        self.reaper.recover_earlier_workers(host, self.id)

    def beat(self, draining: bool, force: bool = False) -> tuple[bool, str | None]:
        """Beat if one is due (or `force`): (whether it beat, a request such as 'restart')."""
        monotonic = time.monotonic()
        if monotonic < self.next_beat and not force:
            return False, None
        request = self.store.workers.beat(self.id, self.clock(), DRAINING if draining else RUNNING)
        self.next_beat = monotonic + self.settings.heartbeat_interval  # only once it worked
        if request:
            self.store.workers.clear_request(self.id)
            log.info("worker %s asked to %s", self.id, request)
        return True, request

    def reap(self) -> None:
        """Reap dead peers when due, and only while this worker's own heartbeat is fresh (a
        worker back from an outage must not declare the others dead before it beats)."""
        monotonic = time.monotonic()
        if monotonic >= self.next_reap and self.next_beat > monotonic:
            self.next_reap = monotonic + min(self.settings.heartbeat_interval, REAP_INTERVAL)
            self.reaper.reap()

    def stop(self) -> None:
        self.store.workers.stop(self.id, self.clock())
