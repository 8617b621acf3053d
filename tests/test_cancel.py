"""Cancel: waiting jobs never start, running ones are stopped by the ladder, finish wins races."""

from __future__ import annotations

import random
import time

import pytest
import stopping_jobs
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import Engine, ManualClock, Status
from jobengine.store.moves import start_move
from jobengine.worker import Worker

ENDED = {Status.CANCELED, Status.SUCCESS, Status.WARNING, Status.FAILURE}


def verbs(engine: Engine, job_id: int) -> list[str]:
    return [event.verb for event in engine.events(job_id)]


def test_pending_job_canceled_never_starts(database_url: str) -> None:
    engine = stopping_jobs.register(Engine(database_url, clock=ManualClock()))
    job_id = engine.submit("quick", value=1)
    assert engine.cancel(job_id) is Status.CANCELED
    assert Worker(engine).run_once() == 0
    assert engine.get(job_id).status is Status.CANCELED
    assert verbs(engine, job_id) == ["submit", "cancel"]
    engine.close()


def test_queued_job_canceled_never_starts(database_url: str) -> None:
    engine = stopping_jobs.register(Engine(database_url, clock=ManualClock()))
    job_id = engine.submit("quick", value=1)
    worker = Worker(engine)
    claimed = engine.store.jobs.claim(worker.id, [], 10, engine.clock.now())
    assert engine.cancel(job_id) is Status.CANCELED
    now = engine.clock.now()
    moves = [start_move(job, worker.id, now) for job in claimed]
    assert engine.store.jobs.move_many(moves, now) == [False]  # its start lost to the cancel
    assert engine.get(job_id).status is Status.CANCELED
    assert "start" not in verbs(engine, job_id)
    engine.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("job_type", "step"),
    [
        ("cooperative", "step 1"),
        ("checking_loop", "step 1"),
        ("busy_loop", "step 2"),
        ("sleep_forever", "step 3"),
        ("socket_read", "step 3"),
        ("deadlock", "step 3"),
        ("c_loop", "step 4"),
        ("swallow_everything", "step 4"),
    ],
)
def test_running_job_is_stopped_by_the_ladder(
    stopping_engine: Engine, job_type: str, step: str
) -> None:
    engine = stopping_engine
    with worker_thread(engine):
        job_id = engine.submit(job_type)
        stopping_jobs.wait_until_started(engine, job_id)
        assert engine.cancel(job_id) is Status.TO_CANCEL
        wait_for_status(engine, job_id, ENDED, timeout=15)
    job = engine.get(job_id)
    assert job.status is Status.CANCELED
    assert f"stopped by {step}" in (job.errors or "")
    log = "\n".join(line.text for line in engine.log(job_id))
    assert f"stopped by {step}" in log
    assert verbs(engine, job_id)[-1] == "cancel"


@pytest.mark.timeout(60)
def test_cancel_exception_is_not_swallowed_by_except_exception(stopping_engine: Engine) -> None:
    from jobengine.context import JobCanceled

    assert not issubclass(JobCanceled, Exception)
    assert issubclass(JobCanceled, BaseException)


@pytest.mark.timeout(120)
def test_cancel_racing_completion_ends_in_exactly_one_status(stopping_engine: Engine) -> None:
    engine = stopping_engine
    rng = random.Random(7)
    job_ids = []
    with worker_thread(engine, concurrency=10, poll_interval=0.05):
        for _ in range(200):
            # Some end before their cancel lands, some outlive the ladder's first steps.
            job_ids.append(engine.submit("short_sleep", seconds=rng.uniform(0, 0.3)))
            time.sleep(rng.uniform(0, 0.01))  # a random offset, not synchronisation
            try:
                engine.cancel(job_ids[-1])
            except Exception as error:  # the job may have ended already
                assert "already ended" in str(error)
        wait_for(lambda: all(engine.get(i).status in ENDED for i in job_ids), 60, "all ended")
    outcomes = {Status.CANCELED: 0, Status.SUCCESS: 0}
    for job_id in job_ids:
        status = engine.get(job_id).status
        assert status in outcomes
        outcomes[status] += 1
        ends = [e for e in engine.events(job_id) if e.to_status in ENDED]
        assert len(ends) == 1, (job_id, ends)
    assert outcomes[Status.CANCELED] > 0
    assert sum(outcomes.values()) == 200


def test_process_job_that_dies_is_recorded_as_failure(stopping_engine: Engine) -> None:
    engine = stopping_engine
    with worker_thread(engine):
        job_id = engine.submit("terminate_self")
        wait_for_status(engine, job_id, ENDED, timeout=20)
    job = engine.get(job_id)
    assert job.status is Status.FAILURE
    assert "killed by SIGKILL" in (job.errors or "")
    assert verbs(engine, job_id)[-1] == "reap"


def test_process_isolated_job_returns_its_result_and_log(database_url: str) -> None:
    engine = Engine(database_url)

    engine.job(isolation="process", name="echo")(stopping_jobs.quick)
    with worker_thread(engine):
        job_id = engine.submit("echo", value=41)
        wait_for_status(engine, job_id, ENDED, timeout=20)
    job = engine.get(job_id)
    assert job.status is Status.SUCCESS and job.result == 41
    engine.close()
