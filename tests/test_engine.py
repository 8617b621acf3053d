"""The producer API on both backends: submit, transactional submit, get, list, cancel, rerun."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from job_steps import WORKER, C, P, Q, R, T, count_rows
from waiting import wait_for

from jobengine import (
    ConfigurationError,
    Engine,
    JobEngineError,
    JobNotFound,
    ManualClock,
    Status,
)
from jobengine.store import Move
from jobengine.store.jobs import CHANNEL


def advance(engine: Engine, job_id: int, *steps: tuple[Status, str]) -> None:
    """Move a job along allowed moves as a worker would."""
    for target, verb in steps:
        job = engine.get(job_id)
        changes = {"worker": WORKER} if verb == "claim" else {}
        move = Move(job.id, job.attempt, job.status, target, verb, WORKER, None, changes)
        engine.store.jobs.move(move, engine.clock.now())


RUNNING_STEPS = ((Q, "claim"), (R, "start"))


# -- submit --------------------------------------------------------------------------------------


def test_submit_uses_the_job_type_defaults(engine: Engine, clock: ManualClock) -> None:
    job_id = engine.submit("greet", name="Ada")
    job = engine.get(job_id)
    assert (job.type, job.queue, job.priority, job.max_attempts, job.timeout) == (
        "greet",
        "mail",
        5,
        3,
        30,
    )
    assert (job.status, job.attempt, job.args) == (P, 1, {"name": "Ada"})
    assert job.run_at == job.created_at == clock.now()
    assert (job.parent, job.rerun_of, job.worker) == (None, None, None)
    [event] = engine.events(job_id)
    assert (event.verb, event.from_status, event.to_status, event.actor) == (
        "submit",
        None,
        P,
        "api",
    )


def test_submit_overrides_the_defaults(engine: Engine, clock: ManualClock) -> None:
    parent = engine.submit("add", a=1, b=2)
    job_id = engine.submit(
        "greet",
        arguments={"name": "Bob", "punctuation": "?"},
        priority=-3,
        queue="urgent",
        timeout=5,
        max_attempts=7,
        parent=parent,
        actor="tester",
    )
    job = engine.get(job_id)
    assert (job.queue, job.priority, job.max_attempts, job.timeout, job.parent) == (
        "urgent",
        -3,
        7,
        5,
        parent,
    )
    assert job.args == {"name": "Bob", "punctuation": "?"}
    assert engine.events(job_id)[0].actor == "tester"
    assert [j.id for j in engine.list(queue="urgent")] == [job_id]


@pytest.mark.parametrize(
    ("when", "offset"),
    [
        ({"run_at": datetime.fromtimestamp(1_800_000_100, UTC)}, 100.0),
        ({"run_at": datetime.fromtimestamp(1_799_999_000, UTC)}, -1000.0),
        ({"run_at": 1_800_000_042.5}, 42.5),
        ({"delay": timedelta(minutes=10)}, 600.0),
        ({"delay": 2.5}, 2.5),
        ({"delay": 0}, 0.0),
        ({}, 0.0),
    ],
    ids=["aware datetime", "past datetime", "float", "timedelta", "seconds", "no delay", "none"],
)
def test_submit_run_at_and_delay(
    engine: Engine, clock: ManualClock, when: dict[str, Any], offset: float
) -> None:
    job = engine.get(engine.submit("add", a=1, b=2, **when))
    assert job.run_at == pytest.approx(clock.now() + offset)
    assert job.created_at == clock.now()
    claimable = engine.store.jobs.claim("w", [], 10, clock.now())
    assert [j.id for j in claimable] == ([job.id] if offset <= 0 else [])


def test_a_delayed_job_becomes_claimable_when_its_time_comes(
    engine: Engine, clock: ManualClock
) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=timedelta(seconds=30))
    assert engine.store.jobs.claim("w", [], 10, clock.now()) == []
    clock.advance(30)
    assert [job.id for job in engine.store.jobs.claim("w", [], 10, clock.now())] == [job_id]


def test_a_submit_wakes_listeners_in_other_engines(engine: Engine) -> None:
    """A plain submit is one statement on PostgreSQL; its NOTIFY still reaches other hosts."""
    other = Engine(engine.url)
    heard: list[str] = []
    stop = threading.Event()
    listener = threading.Thread(
        target=other.store.database.listen, args=(CHANNEL, heard.append, stop), daemon=True
    )
    listener.start()
    try:
        wait_for(lambda: "" in heard, 10, "the listener to connect")
        job_id = engine.submit("greet", name="Ada")
        wait_for(lambda: "mail" in heard, 10, "the submit's wake-up")
        assert [event.verb for event in engine.events(job_id)] == ["submit"]
    finally:
        stop.set()
        listener.join(5)
        other.close()


def test_run_now_makes_a_job_due_later_due_now(engine: Engine, clock: ManualClock) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=timedelta(hours=1))
    woken: list[bool] = []
    engine.on_submit(lambda: woken.append(True))
    engine.run_now(job_id, actor="page")
    assert engine.get(job_id).run_at == clock.now()
    assert woken == [True]
    event = engine.events(job_id)[-1]
    assert (event.verb, event.from_status, event.to_status, event.actor) == (
        "run_now",
        P,
        P,
        "page",
    )
    engine.run_now(job_id)  # already due: nothing more is written
    assert len(engine.events(job_id)) == 2
    assert [job.id for job in engine.store.jobs.claim("w", [], 10, clock.now())] == [job_id]
    rows_before = count_rows(engine.store)
    with pytest.raises(JobEngineError, match="only a PENDING job waits"):
        engine.run_now(job_id)
    assert count_rows(engine.store) == rows_before
    with pytest.raises(JobNotFound):
        engine.run_now(987654)


def test_submit_wakes_listeners(engine: Engine) -> None:
    calls: list[int] = []
    engine.on_submit(lambda: calls.append(1))
    engine.submit("add", a=1, b=2)
    assert calls == [1]


# -- transactional submit ------------------------------------------------------------------------


@pytest.fixture
def caller_connection(engine: Engine, database_url: str) -> Iterator[Any]:
    """The application's own connection to the same database, with an `orders` table."""
    engine.store  # noqa: B018 - the schema exists before the application's transaction begins
    connection: Any
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10)
    else:
        connection = psycopg.connect(database_url)
    connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    connection.commit()
    yield connection
    connection.close()


def count_orders(engine: Engine) -> int:
    with engine.store.database.transaction(write=False) as transaction:
        return int(transaction.execute("SELECT COUNT(*) AS n FROM orders")[0]["n"])


def test_transactional_submit_rolled_back_leaves_no_job(
    engine: Engine, clock: ManualClock, caller_connection: Any
) -> None:
    rows_before = count_rows(engine.store)
    caller_connection.execute("INSERT INTO orders (id, item) VALUES (1, 'book')")
    job_id = engine.submit("add", a=1, b=2, connection=caller_connection)
    assert engine.store.jobs.get(job_id) is None  # not visible outside the open transaction
    caller_connection.rollback()
    with pytest.raises(JobNotFound):
        engine.get(job_id)
    assert count_rows(engine.store) == rows_before
    assert count_orders(engine) == 0
    assert engine.store.jobs.claim("w", [], 10, clock.now()) == []


def test_transactional_submit_committed_is_claimable(
    engine: Engine, clock: ManualClock, caller_connection: Any
) -> None:
    caller_connection.execute("INSERT INTO orders (id, item) VALUES (1, 'book')")
    job_id = engine.submit("greet", name="Ada", connection=caller_connection)
    caller_connection.commit()
    assert count_orders(engine) == 1
    [claimed] = engine.store.jobs.claim("w", ["mail"], 10, clock.now())
    assert (claimed.id, claimed.args) == (job_id, {"name": "Ada"})
    assert [event.verb for event in engine.events(job_id)] == ["submit", "claim"]


def test_transactional_submit_refuses_a_connection_of_the_other_backend(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    rows_before = count_rows(engine.store)
    if database_url.startswith("sqlite"):
        other: Any = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test")
        expected = "must be a sqlite3.Connection"
    else:
        other = sqlite3.connect(tmp_path / "other.db")
        expected = "must be a psycopg.Connection"
    try:
        with pytest.raises(ConfigurationError, match=expected):
            engine.submit("add", a=1, b=2, connection=other)
    finally:
        other.close()
    assert count_rows(engine.store) == rows_before


# -- get, list, events ---------------------------------------------------------------------------


def test_get_and_events_of_a_missing_job(engine: Engine) -> None:
    with pytest.raises(JobNotFound, match="no job has id 12345; list jobs with `jobengine jobs`"):
        engine.get(12345)
    with pytest.raises(JobNotFound):
        engine.events(12345)


def test_list_filters_and_pages(engine: Engine) -> None:
    adds = [engine.submit("add", a=i, b=i) for i in range(5)]
    greet = engine.submit("greet", name="Ada")
    advance(engine, adds[0], *RUNNING_STEPS)
    ids = lambda jobs: [job.id for job in jobs]  # noqa: E731
    assert ids(engine.list()) == [greet, *reversed(adds)]
    assert ids(engine.list(status="running")) == [adds[0]]
    assert ids(engine.list(status=Status.RUNNING)) == [adds[0]]
    assert ids(engine.list(status=["PENDING", R], type="add")) == list(reversed(adds))
    assert ids(engine.list(type="greet")) == [greet]
    assert ids(engine.list(queue="mail")) == [greet]
    first = engine.list(limit=2)
    assert ids(first) == [greet, adds[4]]
    assert ids(engine.list(limit=2, after=first[-1].id)) == [adds[3], adds[2]]
    assert engine.list(type="nothing") == []
    with pytest.raises(ConfigurationError, match="unknown status 'bogus'; use one of PENDING"):
        engine.list(status="bogus")


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_a_pending_job_ends_it_at_once(engine: Engine, clock: ManualClock) -> None:
    job_id = engine.submit("add", a=1, b=2)
    clock.advance(3)
    assert engine.cancel(job_id, actor="ops", reason="not needed") is C
    job = engine.get(job_id)
    assert job.status is C
    assert job.finished_at == job.cancel_requested_at == clock.now()
    event = engine.events(job_id)[-1]
    assert (event.verb, event.from_status, event.to_status, event.actor, event.reason) == (
        "cancel",
        P,
        C,
        "ops",
        "not needed",
    )
    assert engine.store.jobs.claim("w", [], 10, clock.now()) == []


def test_cancel_a_queued_job_ends_it_at_once(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2)
    advance(engine, job_id, (Q, "claim"))
    assert engine.cancel(job_id) is C
    assert engine.get(job_id).status is C
    assert engine.events(job_id)[-1].from_status is Q


def test_cancel_a_running_job_asks_its_worker(engine: Engine, clock: ManualClock) -> None:
    job_id = engine.submit("add", a=1, b=2)
    advance(engine, job_id, *RUNNING_STEPS)
    assert engine.cancel(job_id) is T
    job = engine.get(job_id)
    assert (job.status, job.cancel_requested_at, job.finished_at) == (T, clock.now(), None)
    events = engine.events(job_id)
    assert (events[-1].verb, events[-1].from_status, events[-1].to_status) == ("cancel", R, T)
    assert engine.cancel(job_id) is T  # asking again changes nothing
    assert engine.events(job_id) == events


@pytest.mark.parametrize("outcome", [C, Status.SUCCESS, Status.WARNING, Status.FAILURE], ids=str)
def test_cancel_an_ended_job_raises(engine: Engine, outcome: Status) -> None:
    job_id = engine.submit("add", a=1, b=2)
    if outcome is C:
        engine.cancel(job_id)
    else:
        advance(engine, job_id, *RUNNING_STEPS, (outcome, "finish"))
    rows_before = count_rows(engine.store)
    with pytest.raises(JobEngineError, match=f"already ended {outcome}; nothing to cancel"):
        engine.cancel(job_id)
    assert engine.get(job_id).status is outcome
    assert count_rows(engine.store) == rows_before
    with pytest.raises(JobNotFound):
        engine.cancel(987654)


# -- rerun ---------------------------------------------------------------------------------------


def test_rerun_creates_a_new_job_pointing_at_the_old(engine: Engine, clock: ManualClock) -> None:
    old_id = engine.submit("greet", name="Ada", priority=8, queue="vip")
    advance(engine, old_id, *RUNNING_STEPS, (Status.FAILURE, "finish"))
    old = engine.get(old_id)
    clock.advance(60)
    new_id = engine.rerun(old_id, actor="ops")
    assert new_id != old_id
    new = engine.get(new_id)
    assert (new.type, new.args, new.queue, new.priority, new.max_attempts, new.timeout) == (
        old.type,
        old.args,
        old.queue,
        old.priority,
        old.max_attempts,
        old.timeout,
    )
    assert (new.status, new.attempt, new.rerun_of, new.run_at) == (P, 1, old_id, clock.now())
    assert engine.get(old_id) == old  # history is never rewritten
    assert [(e.verb, e.actor) for e in engine.events(new_id)] == [("submit", "ops")]
    again = engine.rerun(old_id)
    assert again not in (old_id, new_id)
    assert engine.get(again).rerun_of == old_id


@pytest.mark.parametrize(
    "steps", [(), ((Q, "claim"),), RUNNING_STEPS], ids=["PENDING", "QUEUED", "RUNNING"]
)
def test_only_ended_jobs_can_be_rerun(
    engine: Engine, steps: tuple[tuple[Status, str], ...]
) -> None:
    job_id = engine.submit("add", a=1, b=2)
    advance(engine, job_id, *steps)
    rows_before = count_rows(engine.store)
    with pytest.raises(JobEngineError, match="only ended jobs can be rerun"):
        engine.rerun(job_id)
    assert count_rows(engine.store) == rows_before
    with pytest.raises(JobNotFound):
        engine.rerun(987654)


def test_transactional_submit_refuses_an_autocommit_connection(
    engine: Engine, database_url: str
) -> None:
    engine.store  # noqa: B018 - the schema exists
    rows_before = count_rows(engine.store)
    if database_url.startswith("sqlite"):
        connection: Any = sqlite3.connect(
            database_url.removeprefix("sqlite:///"), isolation_level=None
        )
    else:
        connection = psycopg.connect(database_url, autocommit=True)
    try:
        with pytest.raises(ConfigurationError, match="autocommit mode with no open transaction"):
            engine.submit("add", a=1, b=2, connection=connection)
        assert count_rows(engine.store) == rows_before
        if database_url.startswith("sqlite"):  # an explicit transaction is fine
            connection.execute("BEGIN")
            job_id = engine.submit("add", a=1, b=2, connection=connection)
            connection.execute("COMMIT")
        else:
            with connection.transaction():
                job_id = engine.submit("add", a=1, b=2, connection=connection)
        assert engine.get(job_id).status is P
    finally:
        connection.close()
