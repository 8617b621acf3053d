"""Item 8: a job the database gives a worker that the worker does not hold is recovered at its
next beat, not kept alive by the beats for ever."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from invariants import check_invariants
from waiting import wait_for

from jobengine import Engine, Status, Worker
from jobengine.settings import Settings


@contextmanager
def running_worker(engine: Engine) -> Iterator[Worker]:
    worker = Worker(engine, Settings(poll_interval=0.05, heartbeat_interval=0.2, dead_after=5))
    thread = threading.Thread(target=worker.run, name="audited-worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()


def give(engine: Engine, job_id: int, worker: str, status: str) -> None:
    """Make the row say `worker` holds the job, as a lost outcome or a crashed thread leaves it."""
    with engine.store.database.transaction() as transaction:
        transaction.execute(
            "UPDATE jobs SET status = ?, worker = ?, queued_at = 1, started_at = 1 WHERE id = ?",
            (status, worker, job_id),
        )


def test_jobs_the_worker_does_not_hold_are_released_or_failed_at_its_next_beat(
    database_url: str,
) -> None:
    engine = Engine(database_url)
    try:
        engine.job(lambda: None, name="noop")
        engine.job(lambda: None, name="lost_twice", max_attempts=1)
        queued = engine.submit("noop", run_at=4_000_000_000.0)  # not due: only the audit moves it
        running = engine.submit("lost_twice", run_at=4_000_000_000.0)
        with running_worker(engine) as worker:
            wait_for(lambda: engine.store.workers.find(), 20, "the worker to register")
            give(engine, queued, worker.id, "QUEUED")
            give(engine, running, worker.id, "RUNNING")
            wait_for(lambda: engine.get(running).status is Status.FAILURE, 20, "the audit")
            wait_for(lambda: engine.get(queued).status is Status.PENDING, 20, "the release")
        reasons = [event.reason or "" for event in engine.events(running)]
        assert any("does not hold this job" in reason for reason in reasons), reasons
        assert engine.get(queued).worker is None
    finally:
        engine.close()
    check_invariants(database_url)
