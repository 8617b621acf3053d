"""A worker's last steps: stop claiming, let its jobs finish, stop the rest, record, leave."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from jobengine.context import StopKind
from jobengine.errors import DatabaseUnavailable
from jobengine.model import Status
from jobengine.runner import Outcome

if TYPE_CHECKING:
    from jobengine.worker import Worker

log = logging.getLogger("jobengine.worker")
DATABASE_WAIT = 1.0  # the longest any one database call may wait once shutdown has begun
FINAL_WRITES = 3.0  # seconds, after the jobs have ended, to record them and sign off


def shut_down(worker: Worker) -> None:
    """Drain one worker: the shutdown timeout for its jobs, then the cancel ladder for the rest;
    what cannot be stopped or written is left, said in the log, for the reaper. Everything
    within one deadline: shutdown timeout + kill grace + the final writes."""
    settings = worker.settings
    deadline = time.monotonic() + settings.shutdown_timeout + settings.kill_grace + 0.5
    worker.draining = True
    worker.store.database.shorten_waits(DATABASE_WAIT)
    log.info("worker %s draining: %s jobs running", worker.id, len(worker.running))
    with contextlib.suppress(DatabaseUnavailable):  # tell the others it is draining
        worker.heartbeat.beat(draining=True, force=True)
    _wait_for_jobs(worker, time.monotonic() + settings.shutdown_timeout, worker.stop_waiting)
    for running in worker.active():
        worker.ladder.request_stop(running, StopKind.SHUTDOWN, "interrupted by shutdown")
    _wait_for_jobs(worker, time.monotonic() + settings.kill_grace + 0.5, None)
    errors = "interrupted by shutdown; its thread could not be stopped"
    for running in worker.active():
        log.error("job %s could not be stopped; recording it as interrupted", running.job.id)
        worker.finished(running, Outcome(Status.CANCELED, errors=errors, stopped=True))
    final = min(time.monotonic(), deadline) + FINAL_WRITES
    worker.recorder.flush_until(final - DATABASE_WAIT)
    for executor in worker.executors.values():
        executor.close(0.5)
    try:
        worker.heartbeat.stop()
    except DatabaseUnavailable:
        log.warning("could not mark worker %s stopped; the reaper will", worker.id)
    log.info("worker %s stopped", worker.id)


def _wait_for_jobs(worker: Worker, deadline: float, cut_short: threading.Event | None) -> None:
    while worker.running and time.monotonic() < deadline:
        if cut_short is not None and cut_short.is_set():
            return
        with contextlib.suppress(DatabaseUnavailable):
            worker.check_stops()
            worker.heartbeat.beat(draining=True)  # a long drain is not a death
        worker.wake.wait(0.05)
        worker.wake.clear()
