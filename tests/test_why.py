"""`engine.why(job_id)` and `jobengine why JOB`: one verdict for every situation a job can be in,
each built for real (live workers in threads or processes, real kills, an injected clock)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnosis_steps import Gate, beaten_since, cli, diagnosis_app, live_worker
from waiting import wait_for, wait_for_status

from jobengine import Engine, ManualClock, Status
from jobengine.wording import worker_label

pytestmark = pytest.mark.timeout(120)
START = "2027-01-15 08:00:00 UTC"  # the ManualClock's first moment


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.close()


def noted(engine: Engine, job_id: int, text: str) -> bool:
    return any(text in (event.reason or "") for event in engine.events(job_id))


# -- PENDING -----------------------------------------------------------------------------------


def test_a_job_due_later_is_scheduled(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=180)

    verdict = engine.why(job_id)

    assert verdict.code == "scheduled"
    assert verdict.sentence == "scheduled for 2027-01-15 08:03:00 UTC (in 3 min)"
    assert verdict.evidence["run_at"] == "2027-01-15T08:03:00.000+00:00"


def test_a_due_job_in_a_queue_no_live_worker_serves(engine: Engine) -> None:
    with live_worker(engine, queues=("mail",)):
        job_id = engine.submit("add", a=1, b=2)

        verdict = engine.why(job_id)

    assert verdict.code == "no_worker"
    assert verdict.sentence.startswith("waiting: no live worker serves queue `default`; start one")


def test_a_due_job_whose_type_no_live_worker_has(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    other = Engine(database_url, clock=clock)
    other.job(lambda a, b: a + b, name="add")  # this worker's app knows only `add`
    with live_worker(other) as worker:
        job_id = engine.submit("greet", name="ada")

        verdict = engine.why(job_id)

    other.close()
    assert verdict.code == "no_worker_for_type"
    assert verdict.sentence.startswith(
        "waiting: no live worker serving queue `mail` has job type `greet` registered"
        " (the types of the 1 worker serving it: add)"
    )
    assert verdict.evidence["serving_workers"] == [worker.id]


def test_a_due_job_behind_busy_workers_counts_the_jobs_ahead_of_it(
    engine: Engine, release: threading.Event
) -> None:
    engine.job(lambda: release.wait(60), name="hold")
    with live_worker(engine, concurrency=2):
        busy = [engine.submit("hold"), engine.submit("hold")]
        for job_id in busy:
            wait_for_status(engine, job_id, {Status.RUNNING})
        target = engine.submit("hold", priority=0)
        ahead = [engine.submit("hold", priority=5), engine.submit("hold", priority=5)]
        engine.submit("hold", priority=-1)  # behind it: not counted

        verdict = engine.why(target)
        release.set()

    assert verdict.code == "workers_busy"
    assert verdict.sentence == (
        "waiting: the only live worker serving `default` is busy (2/2 threads);"
        f" {len(ahead)} jobs ahead of it by priority"
    )
    assert (verdict.evidence["busy"], verdict.evidence["capacity"]) == (2, 2)


def test_a_failed_attempt_waits_for_its_retry_after_the_backoff(engine: Engine) -> None:
    def flaky() -> None:
        raise RuntimeError("the disk is full")

    engine.job(flaky, max_attempts=3)
    with live_worker(engine):
        job_id = engine.submit("flaky")
        wait_for(lambda: engine.get(job_id).attempt == 2, 30, "the retry")

        verdict = engine.why(job_id)

    assert verdict.code == "retry_backoff"
    assert verdict.sentence.startswith("waiting: retry 2 of 3 after backoff, due at 2027-01-15 ")
    assert "UTC (in " in verdict.sentence
    assert verdict.sentence.endswith("; attempt 1 failed: RuntimeError: the disk is full")


# -- QUEUED ------------------------------------------------------------------------------------


def test_a_job_claimed_by_a_live_worker_is_starting(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    other = Engine(database_url, clock=clock)
    other.job(lambda a, b: a + b, name="add")
    with live_worker(other) as worker:
        job_id = engine.submit("greet", name="ada")
        # The worker's claim without its start (workers claim and start in one statement, so
        # this is the moment between the two moves, held still).
        engine.store.jobs.claim(worker.id, (), 1, clock.now(), ["greet"])
        clock.advance(0.4)

        verdict = engine.why(job_id)

    other.close()
    assert verdict.code == "claimed"
    assert verdict.sentence == f"claimed by worker {worker_label(worker.id)} 400 ms ago, starting"
    assert verdict.evidence["worker_alive"] is True


def test_a_job_claimed_by_a_worker_that_died_waits_for_the_reaper(
    tmp_path: Path, database_url: str
) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        record = app.registered(process)
        job_id = app.engine.submit("nap", seconds=60, delay=3600)
        app.kill(process)
        app.engine.store.jobs.claim(record.id, (), 1, record.heartbeat + 7200, ["nap"])
        observer = app.observer(ahead=45)

        verdict = observer.why(job_id)

    observer.close()
    assert verdict.code == "claimed_by_dead_worker"
    assert verdict.sentence.startswith(
        f"claimed by worker {record.host}:{record.pid}, which stopped heartbeating 4"
    )
    assert verdict.sentence.endswith(
        "s ago; no live worker is running to reap it: start one and its reaper will release it"
    )


# -- RUNNING -----------------------------------------------------------------------------------


def test_a_running_job_on_a_live_worker_with_its_last_log_line(
    tmp_path: Path, database_url: str
) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        record = app.registered(app.worker())
        job_id = app.engine.submit("chatty", line="step 1 of 3: copying", seconds=60)
        wait_for(lambda: app.engine.log(job_id), 30, "its log line")
        observer = Engine(database_url)  # the shared clock, as every process reads it

        verdict = observer.why(job_id)

    observer.close()
    assert verdict.code == "running"
    assert verdict.sentence.startswith("running for ")
    assert f" on {record.host}:{record.pid} (alive, heartbeat " in verdict.sentence
    assert "; last log line " in verdict.sentence
    assert verdict.sentence.endswith(": 'job.chatty: step 1 of 3: copying'; timeout: none")
    assert verdict.evidence["last_log_line"] == "job.chatty: step 1 of 3: copying"


def test_a_running_job_silent_for_long_looks_hung(
    engine: Engine, clock: ManualClock, release: threading.Event
) -> None:
    def quiet(ctx: object) -> None:
        ctx.log.info("connecting to the mainframe")  # type: ignore[attr-defined]
        release.wait(60)

    engine.job(quiet)
    with live_worker(engine) as worker:
        job_id = engine.submit("quiet")
        wait_for(lambda: engine.log(job_id), 30, "its log line")
        clock.advance(700)
        beaten_since(engine, worker)

        verdict = engine.why(job_id)
        release.set()

    assert verdict.code == "running_looks_hung"
    assert "last log line 11 min 40 s ago: 'job.quiet: connecting to the mainframe'" in (
        verdict.sentence
    )
    assert verdict.sentence.endswith(
        "it looks hung: no log line and no progress for 11 min 40 s; see where it is with"
        f" `jobengine stack {job_id}`"
    )


def test_a_job_running_past_its_timeout_in_a_blocking_call(
    engine: Engine, clock: ManualClock, gate: Gate
) -> None:
    engine.job(gate.block, name="blocked", timeout=1)
    with live_worker(engine) as worker:
        job_id = engine.submit("blocked")
        wait_for(lambda: noted(engine, job_id, "step 2"), 30, "the timeout's step 2")
        clock.advance(60)
        beaten_since(engine, worker)

        verdict = engine.why(job_id)
        gate.open()

    assert verdict.code == "running_past_timeout"
    assert "; timeout: 1 s; the timeout ladder reached step 2 (raised JobCanceled inside the" in (
        verdict.sentence
    )
    assert "it is 59 s past its timeout and still running: its stop has not taken" in (
        verdict.sentence
    )


def test_a_job_running_on_a_worker_that_died(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        record = app.registered(process)
        job_id = app.engine.submit("nap", seconds=60)
        app.running(job_id)
        app.kill(process)
        observer = app.observer(ahead=45)

        verdict = observer.why(job_id)

    observer.close()
    assert verdict.code == "running_on_dead_worker"
    assert verdict.sentence.startswith(
        f"running on worker {record.host}:{record.pid}, which stopped heartbeating 4"
    )
    assert verdict.sentence.endswith(
        "reaper will retry it if its type is idempotent, else fail it (no attempts left)"
    )
    assert verdict.evidence["worker_alive"] is False


# -- TO_CANCEL ---------------------------------------------------------------------------------


def test_a_job_being_canceled_names_the_ladder_step_reached_and_when(
    engine: Engine, clock: ManualClock, gate: Gate
) -> None:
    engine.job(gate.block, name="blocked")
    with live_worker(engine) as worker:
        job_id = engine.submit("blocked")
        wait_for_status(engine, job_id, {Status.RUNNING})
        engine.cancel(job_id, actor="cli")
        wait_for(lambda: noted(engine, job_id, "step 2"), 30, "the cancel's step 2")

        first = engine.why(job_id)
        clock.advance(30)
        beaten_since(engine, worker)
        later = engine.why(job_id)
        gate.open()
        wait_for_status(engine, job_id, {Status.CANCELED})

    assert first.code == "canceling"
    assert first.sentence == (
        "cancel requested just now by cli; the cancel ladder reached step 2 (raised JobCanceled"
        f" inside the job's thread) just now, at {START}"
    )
    assert later.code == "cancel_resisted"
    assert "it has resisted for 30 s (a thread job in a blocking call cannot be interrupted)" in (
        later.sentence
    )


# -- ended -------------------------------------------------------------------------------------


def test_ended_jobs_say_their_outcome_who_ended_them_and_why(engine: Engine) -> None:
    def broken() -> None:
        raise ValueError("no such server: web-9")

    engine.job(broken)
    with live_worker(engine) as worker:
        succeeded, failed = engine.submit("add", a=1, b=2), engine.submit("broken")
        for job_id in (succeeded, failed):
            wait_for_status(engine, job_id, {Status.SUCCESS, Status.FAILURE})
    canceled = engine.submit("add", a=1, b=2, delay=60)
    engine.cancel(canceled, actor="cli", reason="not needed any more")
    label = worker_label(worker.id)

    success, failure, cancel = (engine.why(i) for i in (succeeded, failed, canceled))

    assert success.code == "ended_success"
    assert success.sentence.startswith(f"SUCCESS just now ({START}), attempt 1 of 1, ran ")
    assert success.sentence.endswith(f"; ended by worker {label} (finish)")
    assert failure.code == "ended_failure"
    assert failure.sentence.endswith(
        f"; ended by worker {label} (finish): ValueError: no such server: web-9"
    )
    assert cancel.code == "ended_canceled"
    assert cancel.sentence == (
        f"CANCELED just now ({START}), attempt 1 of 1, before it ran; ended by cli (cancel):"
        " not needed any more"
    )


@pytest.mark.timeout(180)
def test_jobs_recovered_after_their_worker_died(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        first = app.worker()
        dead = app.registered(first)
        retried = app.engine.submit("nap_twice", seconds=0.5)
        lost = app.engine.submit("nap", seconds=60)
        app.running(retried)
        app.running(lost)
        app.kill(first)
        survivor = app.registered(app.worker())  # it recovers its host's dead workers at once
        for job_id in (retried, lost):
            wait_for_status(app.engine, job_id, {Status.SUCCESS, Status.FAILURE}, timeout=60)

        recovered, failed = app.engine.why(retried), app.engine.why(lost)

    gone = f"worker {dead.id} stopped heartbeating at "
    assert recovered.code == "ended_success"
    assert "; recovered after its worker died (" + gone in recovered.sentence
    assert f"(its process {dead.pid} is gone); attempt 1 lost, retry in " in recovered.sentence
    assert recovered.evidence["recoveries"][0]["attempt"] == 1
    assert failed.code == "failed_worker_died"
    assert failed.sentence.startswith("FAILURE ")
    assert f"; ended by worker {survivor.host}:{survivor.pid} (reap): {gone}" in failed.sentence
    assert failed.sentence.endswith("; worker died while running this job")


# -- one verdict everywhere --------------------------------------------------------------------


def test_the_cli_prints_the_verdict_with_the_job_url_and_json_is_the_same(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=180)
    environment = {"JOBENGINE_WEB_PUBLIC_URL": "https://jobs.example.com/"}

    text = cli(engine.url, "why", str(job_id), **environment)
    as_json = cli(engine.url, "why", str(job_id), "--json", **environment)

    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == f"job {job_id} (https://jobs.example.com/jobs/{job_id}): PENDING"
    assert lines[1].startswith("scheduled for 2027-01-15 08:03:00 UTC")
    data = json.loads(as_json.output)
    assert data["code"] == "scheduled"
    assert data["sentence"] == lines[1]
    assert data["evidence"]["url"] == f"https://jobs.example.com/jobs/{job_id}"


def test_the_dashboard_seam_gives_the_engine_verdict(engine: Engine) -> None:
    from jobengine.web import seams

    job_id = engine.submit("add", a=1, b=2)

    seen = seams.why(engine, job_id)

    assert seen is not None
    assert seen.to_dict() == engine.why(job_id).to_dict()


def test_why_of_an_unknown_job_is_one_clear_line(engine: Engine) -> None:
    assert engine.list() == []  # the database exists, without job 999
    result = cli(engine.url, "why", "999")

    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: no job has id 999; list jobs with `jobengine jobs`")
