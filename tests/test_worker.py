"""The worker on both backends: outcomes, retries, priorities, schedules, ctx and concurrency."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from job_steps import ALLOW_STARTS, REFUSE_STARTS, execute
from waiting import wait_for

import jobengine
from jobengine import Engine, ManualClock, Status
from jobengine.context import JobContext, current_job
from jobengine.model import Event
from jobengine.recorder import decide
from jobengine.runner import Outcome
from jobengine.worker import Settings, Worker

pytestmark = pytest.mark.timeout(60)


@contextmanager
def worker_in_thread(engine: Engine, **settings: Any) -> Iterator[Worker]:
    """A real worker running `run()` in a thread; stopped and joined at the end."""
    worker = Worker(engine, Settings(**{"poll_interval": 0.1, **settings}))
    thread = threading.Thread(target=worker.run, name="worker-under-test")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"


@pytest.fixture
def live_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the real clock, for workers running in threads."""
    engine = Engine(database_url)
    yield engine
    engine.close()


def last_event(engine: Engine, job_id: int) -> Event:
    return engine.events(job_id)[-1]


# -- outcomes -------------------------------------------------------------------------------------


def test_return_values_become_success_warning_failure_and_result(engine: Engine) -> None:
    @engine.job
    def nothing() -> None:
        return None

    @engine.job
    def warn() -> str:
        return "WARNING"

    @engine.job
    def cloudbolt_style() -> tuple[str, str, str]:
        return ("FAILURE", "made 2 of 3 servers", "host c unreachable")

    @engine.job
    def report() -> dict[str, Any]:
        return {"servers": ["web-1", "web-2"], "cost": 12.5}

    ids = {name: engine.submit(name) for name in ("nothing", "warn", "cloudbolt_style", "report")}
    assert Worker(engine).drain() == 4

    jobs = {name: engine.get(job_id) for name, job_id in ids.items()}
    assert {name: job.status for name, job in jobs.items()} == {
        "nothing": Status.SUCCESS,
        "warn": Status.WARNING,
        "cloudbolt_style": Status.FAILURE,
        "report": Status.SUCCESS,
    }
    failed = jobs["cloudbolt_style"]
    assert (failed.output, failed.errors) == ("made 2 of 3 servers", "host c unreachable")
    assert jobs["report"].result == {"servers": ["web-1", "web-2"], "cost": 12.5}
    for name, job_id in ids.items():
        verbs = [event.verb for event in engine.events(job_id)]
        assert verbs == ["submit", "claim", "start", "finish"], name
        assert jobs[name].finished_at == engine.clock.now()
    assert last_event(engine, ids["cloudbolt_style"]).reason == "host c unreachable"


def test_an_exception_is_a_failure_with_type_message_and_traceback(engine: Engine) -> None:
    @engine.job
    def provision(server: str) -> None:
        raise ConnectionError(f"{server} refused the connection")

    job_id = engine.submit("provision", server="web-3")
    Worker(engine).drain()

    job = engine.get(job_id)
    assert job.status is Status.FAILURE
    assert job.errors is not None
    assert job.errors.startswith("ConnectionError: web-3 refused the connection\n\nTraceback")
    assert "in provision" in job.errors
    assert last_event(engine, job_id).reason == "ConnectionError: web-3 refused the connection"
    [line] = engine.log(job_id)
    assert line.level == "ERROR" and "web-3 refused the connection" in line.text


def test_a_return_value_that_is_not_json_is_a_failure(engine: Engine) -> None:
    @engine.job
    def leaky() -> object:
        return threading.Lock()

    job_id = engine.submit("leaky")
    Worker(engine).drain()
    job = engine.get(job_id)
    assert job.status is Status.FAILURE
    assert job.errors is not None and "not JSON" in job.errors
    assert job.result is None


# -- retries --------------------------------------------------------------------------------------


def test_a_failed_attempt_is_retried_later_with_a_reason(
    engine: Engine, clock: ManualClock
) -> None:
    attempts: list[int] = []

    @engine.job(max_attempts=3)
    def flaky(ctx: JobContext) -> str:
        attempts.append(ctx.attempt)
        ctx.log.info("attempt %s starts", ctx.attempt)
        if ctx.attempt == 1:
            raise TimeoutError("the API timed out")
        return "WARNING"

    job_id = engine.submit("flaky")
    worker = Worker(engine)
    assert worker.drain() == 1

    job = engine.get(job_id)
    assert (job.status, job.attempt, job.worker, job.started_at) == (Status.PENDING, 2, None, None)
    assert clock.now() + 1.0 <= job.run_at <= clock.now() + 3.0  # 2 s with +-50 % jitter
    retry = last_event(engine, job_id)
    assert (retry.verb, retry.from_status, retry.to_status) == ("retry", "RUNNING", "PENDING")
    assert retry.reason is not None
    assert retry.reason.startswith(
        "attempt 1 failed: TimeoutError: the API timed out; retry 2 of 3"
    )

    assert worker.drain() == 0, "not before its run_at"
    clock.set(job.run_at)
    assert worker.drain() == 1
    job = engine.get(job_id)
    assert (job.status, job.attempt, attempts) == (Status.WARNING, 2, [1, 2])
    log = [(line.attempt, line.level, line.text) for line in engine.log(job_id)]
    assert log[0] == (1, "INFO", "job.flaky: attempt 1 starts")
    assert log[1][:2] == (1, "ERROR") and "TimeoutError" in log[1][2]
    assert log[2:] == [(2, "INFO", "job.flaky: attempt 2 starts")]


def test_the_last_attempt_ends_failure(engine: Engine, clock: ManualClock) -> None:
    @engine.job(max_attempts=2)
    def broken() -> None:
        raise RuntimeError("always")

    job_id = engine.submit("broken")
    worker = Worker(engine)
    worker.drain()
    clock.advance(3600)
    worker.drain()
    job = engine.get(job_id)
    assert (job.status, job.attempt) == (Status.FAILURE, 2)
    verbs = [event.verb for event in engine.events(job_id)]
    assert verbs == ["submit", "claim", "start", "retry", "claim", "start", "finish"]


# -- what is claimed, and when --------------------------------------------------------------------


def test_higher_priority_runs_first_then_older(engine: Engine, clock: ManualClock) -> None:
    order: list[str] = []

    @engine.job
    def record(label: str) -> None:
        order.append(label)

    for label, priority in [("low", 0), ("high-1", 9), ("mid", 5), ("high-2", 9), ("neg", -3)]:
        engine.submit("record", label=label, priority=priority)
        clock.advance(1)
    assert Worker(engine, Settings(concurrency=1)).drain() == 5
    assert order == ["high-1", "high-2", "mid", "low", "neg"]


def test_a_worker_claims_no_more_than_its_free_capacity(engine: Engine) -> None:
    ids = [engine.submit("add", a=n, b=n) for n in range(5)]
    worker = Worker(engine, Settings(concurrency=3))
    assert worker.run_once() == 3
    assert [engine.get(job_id).status for job_id in ids].count(Status.PENDING) == 2
    assert worker.run_once() == 2


def test_a_worker_serves_only_its_queues(engine: Engine) -> None:
    mail = engine.submit("greet", name="ada")  # the greet type's queue is "mail"
    other = engine.submit("add", a=1, b=1)
    assert Worker(engine, Settings(queues=("mail",))).drain() == 1
    assert engine.get(mail).result == "hello ada!"
    assert engine.get(other).status is Status.PENDING


def test_a_job_scheduled_ahead_is_not_claimed_before_its_time(
    engine: Engine, clock: ManualClock
) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=60)
    worker = Worker(engine)
    assert worker.drain() == 0
    clock.advance(59.9)
    assert worker.drain() == 0
    assert engine.get(job_id).status is Status.PENDING
    clock.advance(0.1)
    assert worker.drain() == 1
    assert engine.get(job_id).status is Status.SUCCESS


def test_a_job_of_a_type_the_worker_lacks_is_left_pending_untouched(database_url: str) -> None:
    producer, consumer = Engine(database_url), Engine(database_url)
    try:

        @producer.job
        def only_here() -> None:
            return None

        job_id = producer.submit("only_here")

        @consumer.job
        def something_else() -> None:
            return None

        assert Worker(consumer).run_once() == 0
        job = producer.get(job_id)
        assert (job.status, job.worker) == (Status.PENDING, None)
        assert [event.verb for event in producer.events(job_id)] == ["submit"]  # no churn
    finally:
        producer.close()
        consumer.close()


# -- the job's context ----------------------------------------------------------------------------


def test_ctx_carries_id_attempt_log_and_progress_and_is_current_job(engine: Engine) -> None:
    seen: dict[str, Any] = {}

    @engine.job
    def inspect(ctx: JobContext, label: str) -> None:
        seen.update(context=ctx, current=current_job(), thread=threading.get_ident())
        seen.update(identity=(ctx.job_id, ctx.attempt, ctx.type))
        ctx.log.info("working on %s", label)
        ctx.progress(0.5, "half way")

    job_id = engine.submit("inspect", label="web-1")
    Worker(engine).drain()

    assert seen["current"] is seen["context"]
    assert seen["thread"] == threading.get_ident(), "run_once runs jobs in the caller's thread"
    assert seen["identity"] == (job_id, 1, "inspect")
    assert current_job() is None
    job = engine.get(job_id)
    assert (job.status, job.progress) == (Status.SUCCESS, 0.5)
    assert [line.text for line in engine.log(job_id)] == [
        "job.inspect: working on web-1",
        "progress 50%: half way",
    ]


def test_current_job_is_the_ctx_in_each_job_thread(live_engine: Engine) -> None:
    pairs: dict[int, tuple[JobContext, JobContext | None]] = {}
    barrier = threading.Barrier(4, timeout=20)

    @live_engine.job
    def pair(ctx: JobContext) -> None:
        barrier.wait()  # all four at once, each in its own thread
        pairs[ctx.job_id] = (ctx, current_job())

    ids = [live_engine.submit("pair") for _ in range(4)]
    with worker_in_thread(live_engine, concurrency=4):
        wait_for(lambda: all(live_engine.get(i).status.terminal for i in ids))
    assert {live_engine.get(i).status for i in ids} == {Status.SUCCESS}
    assert sorted(pairs) == sorted(ids)
    assert all(ctx is current for ctx, current in pairs.values())


# -- concurrency ----------------------------------------------------------------------------------


def test_ten_slow_jobs_run_at_once_with_concurrency_ten(live_engine: Engine) -> None:
    @live_engine.job
    def slow() -> None:
        time.sleep(1)

    with worker_in_thread(live_engine, concurrency=10):
        ids = [live_engine.submit("slow") for _ in range(10)]
        wait_for(lambda: all(live_engine.get(i).status.terminal for i in ids))
    jobs_now = [live_engine.get(job_id) for job_id in ids]
    assert {job.status for job in jobs_now} == {Status.SUCCESS}
    last_start = max(job.started_at or 0 for job in jobs_now)
    first_finish = min(job.finished_at or 0 for job in jobs_now)
    assert last_start < first_finish, "every job started before any of them finished"
    assert len({job.worker for job in jobs_now}) == 1


def test_a_freed_slot_is_filled_without_waiting_for_the_next_poll(live_engine: Engine) -> None:
    """Recording an outcome frees capacity; the worker must claim again at once, not a poll later.

    Without it a worker takes at most `concurrency` jobs per poll interval (about 10 jobs/s).
    """

    @live_engine.job
    def noop_job() -> None:
        return None

    ids = [live_engine.submit("noop_job") for _ in range(3)]
    with worker_in_thread(live_engine, concurrency=1, poll_interval=60):
        wait_for(lambda: all(live_engine.get(job_id).status.terminal for job_id in ids), 30)
    starts = sorted(live_engine.get(job_id).started_at or 0 for job_id in ids)
    assert starts[-1] - starts[0] < 30, "a job waited for the next poll"


def test_a_claim_whose_start_fails_is_undone_with_it_and_never_left_queued(
    live_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Claim and start are one transaction: a refused start (here a trigger, as an outage
    would) leaves the job PENDING and unclaimed, and it runs once starts work again."""

    @live_engine.job
    def quick() -> None:
        return None

    execute(live_engine.store, REFUSE_STARTS)
    job_id = live_engine.submit("quick")
    with caplog.at_level(logging.WARNING, logger="jobengine.worker"), worker_in_thread(live_engine):
        wait_for(lambda: "start refused by the test" in caplog.text, 20, "a refused start")
        assert live_engine.get(job_id).status is Status.PENDING
        assert [event.verb for event in live_engine.events(job_id)] == ["submit"]
        execute(live_engine.store, ALLOW_STARTS)
        wait_for(lambda: live_engine.get(job_id).status.terminal)
    assert live_engine.get(job_id).status is Status.SUCCESS
    verbs = [event.verb for event in live_engine.events(job_id)]
    assert verbs == ["submit", "claim", "start", "finish"]


def test_a_running_worker_claims_with_the_outcomes_it_records_within_its_capacity(
    live_engine: Engine,
) -> None:
    """Past the first claim, the jobs that take the place of finished ones are claimed in the
    transaction that records those (one clock reading for both), never beyond the capacity."""
    running, most, guard = [0], [0], threading.Lock()

    @live_engine.job
    def counted() -> None:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002)
        with guard:
            running[0] -= 1

    ids = live_engine.submit_many("counted", [{}] * 30)
    with worker_in_thread(live_engine, concurrency=3, poll_interval=60):
        wait_for(lambda: all(live_engine.get(job_id).status.terminal for job_id in ids), 30)
    events = [event for job_id in ids for event in live_engine.events(job_id)]
    finished_at = {event.at for event in events if event.verb == "finish"}
    claims = [event for event in events if event.verb == "claim"]
    with_outcomes = [event for event in claims if event.at in finished_at]
    assert {live_engine.get(job_id).status for job_id in ids} == {Status.SUCCESS}
    assert most[0] <= 3
    assert len(with_outcomes) >= len(claims) // 2, "claims did not ride with the outcomes"


def test_outcomes_are_recorded_when_the_claim_that_comes_with_them_is_refused(
    live_engine: Engine,
) -> None:
    """The database refuses the claim that goes with an outcome: the outcome is written
    alone, the refused job stays PENDING, and it runs once the database allows it."""
    release = threading.Event()

    @live_engine.job
    def held() -> None:
        release.wait(20)

    @live_engine.job
    def after() -> None:
        return None

    first = live_engine.submit("held")
    with worker_in_thread(live_engine, concurrency=1, poll_interval=60):
        wait_for(lambda: live_engine.get(first).status is Status.RUNNING)
        execute(live_engine.store, REFUSE_STARTS)
        second = live_engine.submit("after")
        release.set()
        wait_for(lambda: live_engine.get(first).status.terminal, 20)
        assert live_engine.get(first).status is Status.SUCCESS
        assert [event.verb for event in live_engine.events(second)] == ["submit"]
        execute(live_engine.store, ALLOW_STARTS)
        live_engine.submit("after")  # a wake-up; the poll would claim it within a minute
        wait_for(lambda: live_engine.get(second).status.terminal, 20)
    assert live_engine.get(second).status is Status.SUCCESS


def registered(engine: Engine, worker: Worker) -> bool:
    return worker.id in {record.id for record in engine.store.workers.find()}


def test_a_worker_that_has_stopped_leaves_no_claim_of_its_listener_running(
    database_url: str,
) -> None:
    """The listener claims on a submit's notice; once `run` has returned, none may still be
    under way: it would use a connection the engine's close is about to close (on SQLite that
    crashed the process) or claim a job no one runs (left RUNNING). Before the fix this test
    failed about one run in four, both ways; a race, so it loops."""
    producer = Engine(database_url)
    producer.job(lambda: None, name="quick")
    try:
        for _ in range(50):
            engine = Engine(database_url)
            engine.job(lambda: None, name="quick")
            with worker_in_thread(engine, poll_interval=60) as worker:
                wait_for(partial(registered, producer, worker), what="the worker to register")
                job_id = producer.submit("quick")  # the listener's notice, as the stop begins
            engine.close()
            assert producer.get(job_id).status in (Status.PENDING, Status.SUCCESS)
    finally:
        producer.close()


# -- the public surface ---------------------------------------------------------------------------


def test_current_job_and_job_context_are_exported_by_the_package() -> None:
    assert jobengine.current_job is current_job
    assert jobengine.JobContext is JobContext


def test_a_record_called_back_after_a_later_run_of_its_job_began_leaves_that_run(
    engine: Engine, clock: ManualClock
) -> None:
    """The recorder launches what it claimed before it calls back what it recorded; were a later
    attempt of a recorded job among them, the earlier attempt's callback would leave it be."""
    worker = Worker(engine)
    job_id = engine.submit("add", a=1, b=1, max_attempts=2)
    [first] = engine.store.jobs.claim(worker.id, [], 1, clock.now(), start=True)
    earlier = worker.prepare(first)
    failed = Outcome(Status.FAILURE, errors="boom")
    retry = decide(first, failed, None, worker.id, clock.now())[0]
    assert engine.store.jobs.move_first([[retry]], clock.now()) == [retry]  # back, attempt 2
    clock.advance(7200)
    [second] = engine.store.jobs.claim(worker.id, [], 1, clock.now(), start=True)
    later = worker.launch(second)

    worker._recorded(earlier, retry)

    assert (second.attempt, worker.running.get(job_id)) == (2, later)
