"""`jobengine doctor`: each problem it looks for, built for real, is found (and exits 1); a
healthy engine is all OK (and exits 0)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from diagnosis_steps import Gate, beaten_since, cli, diagnosis_app, live_worker
from waiting import wait_for, wait_for_status

from jobengine import Engine, ManualClock, Status
from jobengine.doctor import FAIL, OK, WARN, Options, Report, examine
from jobengine.wording import worker_label

pytestmark = pytest.mark.timeout(120)
CHECKS = [
    "database",
    "schema",
    "workers",
    "queues",
    "waiting",
    "job times",
    "stuck jobs",
    "schedules",
    "job types",
    "clocks",
    "claim index",
    "file system",
]


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.close()


@pytest.fixture
def real_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the shared clock (every process's), with the `add` type."""
    engine = Engine(database_url)
    engine.job(lambda a, b: a + b, name="add")
    yield engine
    engine.close()


def problems(report: Report) -> dict[str, str]:
    return {check.name: check.level for check in report.checks if check.level != OK}


def test_a_healthy_engine_is_all_ok_and_exits_0(real_engine: Engine, database_url: str) -> None:
    with live_worker(real_engine):
        result = cli(database_url, "doctor")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[: len(CHECKS)]] == [
        f"OK    {name}" for name in CHECKS
    ]
    assert lines[-1] == "all checks OK"


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "check that the database server is running"),
        ("sqlite:////nonexistent-folder/jobs.db", "check the file's path and that it is a"),
    ],
    ids=["postgresql", "sqlite"],
)
def test_a_database_it_cannot_reach_fails_with_the_fix(url: str, fix: str) -> None:
    result = cli(url, "doctor")

    assert result.exit_code == 1
    assert result.output.startswith("FAIL  database: cannot use ")
    assert f"fix: {fix}" in result.output


def test_an_outdated_schema_fails_and_names_the_upgrade(engine: Engine) -> None:
    with engine.store.database.transaction() as transaction:
        newest = transaction.execute("SELECT MAX(version) AS newest FROM schema_version")
        transaction.execute("DELETE FROM schema_version WHERE version = ?", (newest[0]["newest"],))
    engine.close()

    result = cli(engine.url, "doctor")

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("OK    database: ")
    behind = newest[0]["newest"] - 1
    assert lines[1].startswith(f"FAIL  schema: the database schema is version {behind} but")
    assert "fix: run `jobengine db upgrade`" in lines[2]


def test_no_live_worker_fails(engine: Engine) -> None:
    report = engine.doctor()

    assert report.check("workers").level == FAIL
    assert report.check("workers").message.startswith("no live worker (0 alive, 0 draining")
    assert report.exit_code == 1


def test_a_dead_worker_is_a_warning_naming_it(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        dead = app.registered(process)
        observer = app.observer(ahead=45)
        with live_worker(observer) as alive:  # started first: it does not reap for dead_after
            app.kill(process)
            beaten_since(observer, alive)
            report = observer.doctor()
        observer.close()

    check = report.check("workers")
    assert check.level == WARN
    assert check.message.startswith(
        f"1 alive, 0 draining, 1 dead: worker {dead.host}:{dead.pid} stopped heartbeating 4"
    )
    assert check.message.endswith("s ago and is not declared dead yet")
    assert check.details["dead"] == [dead.id]
    assert check.fix and "read the dead worker's own log" in check.fix


def test_a_queue_with_due_jobs_and_no_live_worker_fails(engine: Engine) -> None:
    with live_worker(engine, queues=("mail",)):
        engine.submit("add", a=1, b=2)
        report = engine.doctor()

    check = report.check("queues")
    assert check.level == FAIL
    assert check.message == "no live worker serves `default` (1 due job)"
    assert check.fix == (
        "start a worker for them, e.g. `jobengine worker --queues default` (no --queues: all)"
    )


def test_the_oldest_due_job_waiting_long_is_a_warning_with_its_url(
    engine: Engine, clock: ManualClock
) -> None:
    with live_worker(engine, queues=("mail",)):
        engine.submit("add", a=1, b=2)
        job_id = engine.submit("add", a=1, b=2)
        engine.submit("add", a=1, b=2, delay=60)
        clock.advance(120)
        report = engine.doctor(job_url=lambda i: f"https://jobs.example.com/jobs/{i}")

    check = report.check("waiting")
    assert check.level == WARN
    first = job_id - 1
    assert check.message == (
        f"the oldest due job, job {first} (https://jobs.example.com/jobs/{first}) (add, queue"
        " `default`), has waited 2 min"
    )
    assert check.fix == f"`jobengine why {first}` says why"


def test_a_pending_job_whose_run_at_holds_no_time_fails_until_run_now_mends_it(
    sqlite_url: str,
) -> None:
    """A row written by hand (SQLite keeps text in a number's column) is never due: no claim
    takes it, the doctor and `why` name it and the fix; `run-now` makes it due and it runs."""
    engine = Engine(sqlite_url)
    engine.job(lambda a, b: a + b, name="add")
    try:
        job_id = engine.submit("add", a=1, b=2)
        with sqlite3.connect(sqlite_url.split("///", 1)[1]) as raw:
            raw.execute("UPDATE jobs SET run_at = '2026-12-01 10:00' WHERE id = ?", (job_id,))
        assert engine.store.jobs.claim("w", [], 10, engine.clock.now(), start=True) == []
        check = engine.doctor().check("job times")
        verdict = engine.why(job_id)
        mended = cli(sqlite_url, "run-now", str(job_id))
        with live_worker(engine):
            wait_for_status(engine, job_id, {Status.SUCCESS})
        after = engine.doctor().check("job times")
    finally:
        engine.close()
    assert check.level == FAIL
    assert check.message == (
        "a PENDING job has a run_at that is not a time (seconds since the epoch), so no worker"
        f" finds it due: job {job_id} ('2026-12-01 10:00')"
    )
    assert check.fix == (
        f"`jobengine run-now {job_id}` makes it due now (or `jobengine cancel {job_id}`)"
    )
    assert check.details == {"job_ids": [job_id]}
    assert verdict.code == "run_at_not_a_time"
    assert verdict.sentence.startswith("never due: its run_at holds '2026-12-01 10:00', not a")
    assert mended.exit_code == 0, mended.output
    assert mended.output == (
        f"job {job_id}: due now (its run_at held no time); the next free worker runs it\n"
    )
    assert (after.level, after.message) == (OK, "every PENDING job's run_at is a time")


def test_a_job_whose_worker_died_is_stuck(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        process = app.worker()
        dead = app.registered(process)
        job_id = app.engine.submit("nap", seconds=60)
        app.running(job_id)
        app.kill(process)
        observer = app.observer(ahead=45)
        report = observer.doctor()
        observer.close()

    check = report.check("stuck jobs")
    assert check.level == WARN
    assert check.message.startswith(
        f"1 stuck job: job {job_id} (RUNNING) belongs to worker {dead.host}:{dead.pid}, which"
        " stopped heartbeating 4"
    )
    assert check.details["jobs"] == [job_id]


def test_jobs_past_their_timeout_or_resisting_their_cancel_are_stuck(
    engine: Engine, clock: ManualClock, gate: Gate
) -> None:
    engine.job(gate.block, name="blocked", timeout=1)
    engine.job(gate.block, name="blocked_for_ever")
    with live_worker(engine, concurrency=2) as worker:
        timed = engine.submit("blocked")
        canceled = engine.submit("blocked_for_ever")
        wait_for_status(engine, canceled, {Status.RUNNING})
        engine.cancel(canceled)
        wait_for_status(engine, timed, {Status.RUNNING})
        clock.advance(60)
        beaten_since(engine, worker)
        report = engine.doctor()
        gate.open()

    check = report.check("stuck jobs")
    assert check.level == WARN
    assert f"job {timed} (RUNNING) has run 1 min, past its timeout of 1 s" in check.message
    assert (
        f"job {canceled} (TO_CANCEL) was asked to stop 1 min ago, longer than the kill grace"
        in check.message
    )
    assert check.fix and "`jobengine stack ID`" in check.fix


def test_a_schedule_not_fired_within_two_minutes_is_overdue(
    engine: Engine, clock: ManualClock
) -> None:
    engine.schedules.add("every-minute", "add", every=60, arguments={"a": 1, "b": 1})
    clock.advance(100)
    assert engine.doctor().check("schedules").level == OK  # due, but within the grace

    clock.advance(200)
    check = engine.doctor().check("schedules")

    assert check.level == WARN
    assert check.message.startswith("overdue (no worker is ticking them): every-minute was due ")
    assert check.details["overdue"] == ["every-minute"]


def test_job_types_no_live_worker_has_registered(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    other = Engine(database_url, clock=clock)
    other.job(lambda a, b: a + b, name="add")
    with live_worker(other):
        engine.submit("greet", name="ada")
        report = engine.doctor()
    other.close()

    check = report.check("job types")
    assert check.level == WARN
    assert check.message.startswith("no live worker has registered `greet` (")
    assert check.details["types"] == ["greet"]


def test_clock_skew_of_this_host_and_of_a_worker(real_engine: Engine, database_url: str) -> None:
    slow_host = Engine(database_url, clock=ManualClock(time.time() - 30))
    fast_worker_engine = Engine(database_url, clock=ManualClock(time.time() + 30))
    fast_worker_engine.job(lambda a, b: a + b, name="add")
    with live_worker(fast_worker_engine) as fast:
        wait_for(lambda: real_engine.doctor().check("clocks").level == WARN, 30, "its skew")
        from_here = real_engine.doctor().check("clocks")
        from_slow_host = slow_host.doctor().check("clocks")
    slow_host.close()
    fast_worker_engine.close()

    # The injected clocks stand still while the test runs: the skews grow by its duration.
    assert from_here.message.startswith("clocks differ from the database's: ")
    assert re.search(rf"{worker_label(fast.id)} is (29|30)\.\d s behind$", from_here.message)
    assert -31 < from_here.details["skew_seconds"][worker_label(fast.id)] < -29
    assert "this host" not in from_here.message
    assert re.search(r"this host is (30|31)\.\d s ahead", from_slow_host.message)
    assert 29 < from_slow_host.details["skew_seconds"]["this host"] < 31
    assert from_here.fix and "chrony" in from_here.fix


def test_sqlite_on_a_network_file_system_fails(engine: Engine, tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        f"server:/exports {tmp_path} nfs4 rw,relatime,vers=4.2 0 0\n"
    )

    on_nfs = examine(engine, Options(mounts=str(mounts))).check("file system")
    local = engine.doctor().check("file system")

    if engine.store.database.path is None:  # PostgreSQL: no file of its own
        assert on_nfs.level == local.level == OK
        assert on_nfs.message == "not SQLite: no database file to check"
        return
    assert on_nfs.level == FAIL
    assert on_nfs.message.startswith(f"the SQLite file {engine.store.database.path} is on nfs4")
    assert on_nfs.fix == (
        "move the database to a local disk, or use PostgreSQL for workers on several hosts"
    )
    assert local.level == OK


@pytest.fixture(params=["sqlite", "postgresql"])
def lone_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine alone in its database: a SQLite file, or a PostgreSQL database of its own (a
    snapshot another test holds in a shared one would keep VACUUM from removing anything)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_database_url"
    engine = Engine(str(request.getfixturevalue(name)))
    yield engine
    engine.close()


def test_a_claim_index_full_of_claimed_jobs_entries_is_a_warning_until_a_vacuum(
    lone_engine: Engine,
) -> None:
    engine = lone_engine
    store, now, options = engine.store, engine.clock.now(), Options(claim_pages=20)
    columns = ("type", "queue", "priority", "status", "args", "run_at", "created_at", "attempt")
    rows = [("add", "default", 0, "PENDING", "{}", now, now, 1)] * 10_000
    with store.database.transaction() as transaction:
        transaction.insert_rows("jobs", (*columns, "max_attempts"), [(*r, 1) for r in rows])
    fresh = examine(engine, options).check("claim index")
    assert len(store.jobs.claim("w", [], 10_000, now)) == 10_000  # each leaves a dead entry

    bloated = examine(engine, options).check("claim index")

    if store.database.path is not None:
        assert fresh.level == bloated.level == OK
        assert bloated.message == "SQLite removes a claimed job's index entry at once"
        return
    assert fresh.level == OK and fresh.details["pages"] <= 3, fresh
    assert bloated.level == WARN, bloated
    assert bloated.details["pages"] > 20
    assert bloated.message.startswith(f"a claim reads {bloated.details['pages']} pages")
    assert "autovacuum is " in bloated.message and "since the last VACUUM" in bloated.message
    assert bloated.fix is not None and bloated.fix.startswith("run `VACUUM (ANALYZE) jobs")
    with psycopg.connect(engine.store.database.url, autocommit=True) as connection:
        connection.execute("VACUUM jobs")
    assert examine(engine, options).check("claim index").level == OK


def test_autovacuum_turned_off_for_the_jobs_table_is_named(postgres_url: str) -> None:
    engine = Engine(postgres_url)
    try:
        assert engine.store  # the schema made
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            server = connection.execute("SHOW autovacuum").fetchone()
            connection.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")
        check = engine.doctor().check("claim index")
    finally:
        engine.close()

    assert server is not None
    expected = (
        "off (the server's setting)"
        if server[0] != "on"
        else ("off for the table jobs (autovacuum_enabled = false)")
    )
    assert check.details["autovacuum"] == expected
    assert check.message.endswith(f"; autovacuum is {expected}")


def test_doctor_json_lists_every_check_and_exits_1_on_a_problem(engine: Engine) -> None:
    assert engine.list() == []  # the database exists, with no worker
    result = cli(engine.url, "doctor", "--json")

    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["healthy"] is False
    assert [check["name"] for check in data["checks"]] == CHECKS
    workers = next(check for check in data["checks"] if check["name"] == "workers")
    assert workers["level"] == FAIL and workers["fix"].startswith("start one with")


def test_the_health_page_shows_the_doctor_checks(engine: Engine) -> None:
    from jobengine.web import seams

    checks = seams.doctor(engine)

    assert checks is not None
    assert [check.name for check in checks] == CHECKS
