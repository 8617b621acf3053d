"""The original engine's troubleshooting questionnaire, answered by `why` and `doctor` instead
of by hand with `ps` and log files: one test per question."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnosis_steps import Gate, beaten_since, cli, diagnosis_app, live_worker
from waiting import wait_for, wait_for_status

from jobengine import Engine, ManualClock, Status

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.close()


def test_which_job_is_stuck_and_in_which_status(
    engine: Engine, clock: ManualClock, gate: Gate
) -> None:
    """Note the job's number, its status and its URL."""
    engine.job(gate.block, name="blocked")
    with live_worker(engine, concurrency=3) as worker:
        fine = engine.submit("add", a=1, b=2)
        stuck = engine.submit("blocked")
        wait_for_status(engine, fine, {Status.SUCCESS})
        wait_for_status(engine, stuck, {Status.RUNNING})
        engine.cancel(stuck)
        clock.advance(30)
        beaten_since(engine, worker)

        report = engine.doctor(job_url=lambda job_id: f"https://jobs.example.com/jobs/{job_id}")
        verdict = engine.why(stuck)
        gate.open()

    check = report.check("stuck jobs")
    assert check.details["jobs"] == [stuck]
    assert check.message.startswith(
        f"1 stuck job: job {stuck} (https://jobs.example.com/jobs/{stuck}) (TO_CANCEL)"
    )
    assert verdict.evidence["status"] == "TO_CANCEL"
    assert verdict.code == "cancel_resisted"


def test_are_pending_jobs_scheduled_for_later(engine: Engine) -> None:
    later = engine.submit("add", a=1, b=2, delay=3600)
    due = engine.submit("add", a=1, b=2)

    assert engine.why(later).code == "scheduled"
    assert engine.why(later).sentence.endswith("(in 1 h)")
    assert engine.why(due).code == "no_worker"  # due now: waiting for a worker, not the clock


def test_are_jobs_queued_or_pending_with_no_worker_process_running(
    tmp_path: Path, database_url: str
) -> None:
    """The questionnaire's `ps aux | grep jobengine`."""
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        record = app.registered(process)
        claimed = app.engine.submit("nap", seconds=60, delay=3600)
        app.kill(process)
        app.engine.store.jobs.claim(record.id, (), 1, record.heartbeat + 7200, ["nap"])
        waiting = app.engine.submit("nap", seconds=1)
        observer = app.observer(ahead=45)

        report = observer.doctor()
        queued, pending = observer.why(claimed), observer.why(waiting)
        observer.close()

    assert report.check("workers").level == "FAIL"
    assert report.check("workers").message.startswith("no live worker")
    assert report.check("queues").message == "no live worker serves `default` (1 due job)"
    assert queued.code == "claimed_by_dead_worker"
    assert pending.code == "no_worker"


def test_is_a_running_job_on_a_worker_that_died(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        record = app.registered(process)
        job_id = app.engine.submit("nap", seconds=60)
        app.running(job_id)
        app.kill(process)
        observer = app.observer(ahead=45)

        verdict, report = observer.why(job_id), observer.doctor()
        observer.close()

    assert verdict.code == "running_on_dead_worker"
    assert f"{record.host}:{record.pid}, which stopped heartbeating" in verdict.sentence
    assert report.check("stuck jobs").details["jobs"] == [job_id]


def test_is_a_running_job_alive_and_what_was_its_last_log_step(
    tmp_path: Path, database_url: str
) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        app.registered(app.worker())
        job_id = app.engine.submit("chatty", line="step 2 of 5: resizing the disk", seconds=60)
        wait_for(lambda: app.engine.log(job_id), 30, "its log line")

        verdict = app.engine.why(job_id)

    assert verdict.code == "running"
    assert "(alive, heartbeat " in verdict.sentence
    assert verdict.evidence["last_log_line"] == "job.chatty: step 2 of 5: resizing the disk"


def test_why_recurring_jobs_are_never_queued(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    """No worker ticks the schedules; or the only workers lack the schedule's job type."""
    engine.schedules.add("nightly", "greet", every=3600, arguments={"name": "ops"})
    clock.advance(3600 + 300)
    nobody = engine.doctor()
    other = Engine(database_url, clock=clock)
    other.job(lambda a, b: a + b, name="add")
    with live_worker(other) as worker:
        beaten_since(engine, worker)
        untyped = engine.doctor()
    other.close()

    assert nobody.check("schedules").message.startswith(
        "overdue (no worker is ticking them): nightly was due 1 h 5 min ago"
    )
    assert untyped.check("job types").message.startswith("no live worker has registered `greet`")


def test_a_job_that_runs_for_ever_and_where_it_is(
    engine: Engine, clock: ManualClock, database_url: str
) -> None:
    stop = threading.Event()

    def endless(ctx: object) -> None:
        ctx.log.info("polling the remote system")  # type: ignore[attr-defined]
        while not stop.is_set():
            pass

    engine.job(endless)
    with live_worker(engine) as worker:
        job_id = engine.submit("endless")
        wait_for(lambda: engine.log(job_id), 30, "its log line")
        clock.advance(2 * 3600)
        beaten_since(engine, worker)

        verdict = engine.why(job_id)
        where = cli(database_url, "stack", str(job_id))
        stop.set()

    assert verdict.code == "running_looks_hung"
    assert verdict.sentence.startswith("running for 2 h on ")
    assert where.exit_code == 0, where.output
    assert ", in endless" in where.output.splitlines()[1]
    assert "while not stop.is_set():" in where.output


def test_what_to_attach_to_a_support_ticket(tmp_path: Path, database_url: str) -> None:
    """application.log, jobengine.log, each job's log, `ps` output: one command."""
    log_file = tmp_path / "jobengine.log"
    output = tmp_path / "ticket.tar.gz"
    with diagnosis_app(tmp_path, database_url) as app:
        app.registered(app.worker("--log-file", str(log_file)))
        failed = app.engine.submit("connect", dsn="db.internal:5432", password="irrelevant")
        wait_for_status(app.engine, failed, {Status.FAILURE}, timeout=60)

        result = cli(database_url, "support-bundle", "-o", str(output), "--log-file", str(log_file))

    assert result.exit_code == 0, result.output
    with tarfile.open(output, "r:gz") as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"engine.log", "processes.json", "doctor.txt", "workers.txt"} <= names
    assert {f"jobs/{failed}.log", f"jobs/{failed}.timeline.txt", f"jobs/{failed}.json"} <= names
