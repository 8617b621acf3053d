"""A worker's presence: its row in `workers`, its heartbeats, and the peers it reaps."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Collection
from dataclasses import asdict
from importlib.metadata import version

from jobengine import identity
from jobengine.clock import Clock
from jobengine.errors import DatabaseUnavailable
from jobengine.reaper import Reaper, Steadiness
from jobengine.registry import Registry
from jobengine.settings import Settings
from jobengine.store import Store, WorkerRecord
from jobengine.store.workers import DRAINING, RUNNING

log = logging.getLogger("jobengine.worker")
REAP_INTERVAL = 1.0  # how often every worker looks for dead peers (one indexed read)
PROBE_INTERVAL = 1.0  # how often a silent worker asks whether it alone is cut off
# A cut-off worker stops its jobs this much before its peers may take them (at dead_after),
# so the stop has landed before their new attempts start.
FENCE_LEAD = 1.0


class Heartbeat:
    """Registers the worker, beats every heartbeat interval, and reaps only while it is fresh."""

    def __init__(
        self, store: Store, registry: Registry, worker_id: str, settings: Settings, clock: Clock
    ) -> None:
        self.store, self.id, self.settings, self.clock = store, worker_id, settings, clock
        self.registry = registry
        self.reaper = Reaper(store, registry, worker_id, settings.dead_after, clock.now)
        # A beat later than two intervals means the database (or this process) stalled.
        self.steadiness = Steadiness(2 * settings.heartbeat_interval)
        self.next_beat = self.next_reap = 0.0
        self.last_beat = time.monotonic()  # when the database last took a beat of this worker
        self.isolated = False  # cut off from a database the other workers may still reach
        self.next_probe = 0.0

    def register(self) -> None:
        """Recover what earlier workers of this host left, then write the worker's row: once
        the row is there, the start-up's recovery is done (a process that ends later is the
        live workers' to reap, after `dead_after`)."""
        host, settings = socket.gethostname(), self.settings
        self.reaper.recover_earlier_workers(host, self.id)
        now = self.clock.now()
        self.store.workers.register(
            WorkerRecord(
                self.id,
                host,
                os.getpid(),
                now,
                now,
                list(settings.queues),
                settings.concurrency,
                version("jobengine"),
                RUNNING,
                types=self.registry.names(),
                **asdict(identity.of_this_process()),
            )
        )
        queues = ",".join(settings.queues) or "all"
        message = "worker %s started: queues %s, concurrency %s"
        log.info(message, self.id, queues, settings.concurrency)
        self.steadiness.worked()
        self.last_beat = time.monotonic()

    def beat(
        self, draining: bool, held: Collection[int] | None = None, force: bool = False
    ) -> tuple[bool, str | None]:
        """Beat if one is due (or `force`): (whether it beat, a request such as 'restart').

        With `held` (the jobs this worker holds), active jobs the database gives it beyond
        those are recovered at once.
        """
        monotonic = time.monotonic()
        if monotonic < self.next_beat and not force:
            return False, None
        state = DRAINING if draining else RUNNING
        now = self.clock.now()
        try:
            beat = self.store.workers.beat(self.id, now, state, time.time() - now)
        except DatabaseUnavailable:
            self.steadiness.failed()
            raise
        self.steadiness.worked()
        self.last_beat = time.monotonic()
        self.clock.measure()  # keep in step with the shared clock
        self.next_beat = monotonic + self.settings.heartbeat_interval  # only once it worked
        if held is not None:
            self.reaper.recover_unheld(self.id, beat.jobs, held)
        if beat.request:
            self.store.workers.clear_request(self.id)
            log.info("worker %s asked to %s", self.id, beat.request)
        return True, beat.request

    def fenced(self) -> bool:
        """Whether the other workers may soon take this worker's jobs: no beat for nearly
        dead_after, and cut off alone (when the database refuses everyone, none of them can)."""
        silent = self.silent_for()
        fence_at = self.settings.dead_after - min(FENCE_LEAD, self.settings.dead_after / 4)
        if silent < fence_at - PROBE_INTERVAL:
            return False
        if time.monotonic() >= self.next_probe:  # a connection attempt: asked ahead, not often
            self.isolated = self.store.database.isolated()
            self.next_probe = time.monotonic() + PROBE_INTERVAL
        return silent >= fence_at and self.isolated

    def silent_for(self) -> float:
        """Seconds since the database last took this worker's beat."""
        return time.monotonic() - self.last_beat

    def reap(self) -> None:
        """Reap dead peers when due, and only once this worker has beaten steadily for
        dead_after (back from an outage, every peer's heartbeat looks old)."""
        monotonic = time.monotonic()
        if monotonic < self.next_reap:
            return
        self.next_reap = monotonic + min(self.settings.heartbeat_interval, REAP_INTERVAL)
        if self.steadiness.steady_for() >= self.settings.dead_after:
            self.reaper.reap()

    def stop(self) -> None:
        self.store.workers.stop(self.id, self.clock.now())
