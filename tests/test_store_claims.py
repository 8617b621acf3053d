"""The store contract suite, reading: claims (order, run_at, queues, limit), find, counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from job_steps import (
    REFUSE_STARTS,
    WORKER,
    C,
    P,
    Q,
    R,
    S,
    T,
    count_rows,
    execute,
    insert_job,
    job_in,
    reload,
)

from jobengine import Engine, Job, ManualClock, Status
from jobengine.store import Move, Store
from jobengine.store.database import Transaction
from jobengine.store.jobs import Claim
from jobengine.store.moves import EVENT_FIELDS, changes_of
from jobengine.store.postgres_transaction import PostgresTransaction

# -- claiming ------------------------------------------------------------------------------------


def test_claim_moves_jobs_to_queued_for_the_worker(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    job_id = insert_job(store, clock.now() - 10)
    clock.advance(1)
    [claimed] = store.jobs.claim("w7", [], 10, clock.now())
    assert claimed.id == job_id
    assert (claimed.status, claimed.worker) == (Q, "w7")
    assert claimed.queued_at == claimed.heartbeat == clock.now()
    assert reload(store, job_id) == claimed
    event = store.jobs.events(job_id)[-1]
    assert (event.verb, event.from_status, event.to_status, event.actor, event.attempt) == (
        "claim",
        P,
        Q,
        "w7",
        1,
    )
    assert store.jobs.claim("w8", [], 10, clock.now()) == []


def test_claim_order_is_priority_then_run_at_then_id(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    now = clock.now()
    specs = [(0, now - 10), (5, now), (5, now - 5), (0, now - 10), (-1, now - 100), (5, now - 5)]
    ids = [insert_job(store, now, priority=p, run_at=run_at) for p, run_at in specs]
    expected = [ids[2], ids[5], ids[1], ids[0], ids[3], ids[4]]
    one_by_one = [job.id for _ in ids for job in store.jobs.claim("w1", [], 1, now)]
    assert one_by_one == expected

    again = [insert_job(store, now, priority=p, run_at=run_at) for p, run_at in specs]
    best = [again[2], again[5], again[1], again[0], again[3], again[4]]
    assert [job.id for job in store.jobs.claim("w1", [], 3, now)] == best[:3]
    assert [job.id for job in store.jobs.claim("w1", [], 100, now)] == best[3:]


def test_claim_waits_for_run_at(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    later = insert_job(store, clock.now(), run_at=clock.now() + 60)
    assert store.jobs.claim("w1", [], 10, clock.now()) == []
    clock.advance(59.5)
    assert store.jobs.claim("w1", [], 10, clock.now()) == []
    assert reload(store, later).status is P
    clock.advance(0.5)
    assert [job.id for job in store.jobs.claim("w1", [], 10, clock.now())] == [later]


def test_claim_only_takes_the_given_queues(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    now = clock.now()
    default, mail, reports = (
        insert_job(store, now, queue=q) for q in ("default", "mail", "reports")
    )
    assert store.jobs.claim("w1", ["nothing-here"], 10, now) == []
    assert {job.id for job in store.jobs.claim("w1", ["mail", "reports"], 10, now)} == {
        mail,
        reports,
    }
    assert [job.id for job in store.jobs.claim("w2", [], 10, now)] == [default]


def test_claim_respects_the_limit(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    now = clock.now()
    ids = [insert_job(store, now) for _ in range(5)]
    rows_before = count_rows(store)
    assert store.jobs.claim("w1", [], 0, now) == []
    assert count_rows(store) == rows_before
    assert [job.id for job in store.jobs.claim("w1", [], 2, now)] == ids[:2]
    assert [job.id for job in store.jobs.claim("w1", [], 10, now)] == ids[2:]
    assert count_rows(store) == (rows_before[0], rows_before[1] + 5)


def test_claim_never_takes_a_job_that_is_not_pending(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    others = [job_in(store, clock, status) for status in Status if status is not P]
    pending = job_in(store, clock, P)
    assert [job.id for job in store.jobs.claim("w2", [], 100, clock.now())] == [pending.id]
    for job in others:
        assert reload(store, job.id) == job


# -- reading -------------------------------------------------------------------------------------


def test_find_pages_with_a_keyset(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    ids = [insert_job(store, clock.now()) for _ in range(7)]
    pages: list[list[int]] = []
    after = None
    while True:
        page = [job.id for job in store.jobs.find(limit=3, after=after)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    newest_first = sorted((i for i in ids if i is not None), reverse=True)
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    insert_job(store, clock.now())  # a job added meanwhile does not shift the next pages
    assert [job.id for job in store.jobs.find(limit=3, after=pages[0][-1])] == pages[1]


def test_find_filters(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    running = job_in(store, clock, R, type="greet", queue="mail")
    canceled = job_in(store, clock, C, type="greet")
    pending = job_in(store, clock, P, queue="mail")
    ids = lambda jobs: [job.id for job in jobs]  # noqa: E731
    assert ids(store.jobs.find([R])) == [running.id]
    assert ids(store.jobs.find([R, C])) == [canceled.id, running.id]
    assert ids(store.jobs.find(type="greet")) == [canceled.id, running.id]
    assert ids(store.jobs.find(queue="mail")) == [pending.id, running.id]
    assert ids(store.jobs.find(queue="mail", type="add")) == [pending.id]
    assert ids(store.jobs.find(worker=WORKER)) == [running.id]
    assert ids(store.jobs.find([P], after=pending.id)) == []
    assert ids(store.jobs.find(limit=1)) == [pending.id]
    assert store.jobs.owned(WORKER, [R, T]) == [running]
    assert store.jobs.owned(WORKER, [Q]) == []


def test_count_by_status(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    assert store.jobs.count_by_status() == {}
    for status, how_many in ((P, 3), (R, 2), (C, 1), (S, 1)):
        for _ in range(how_many):
            job_in(store, clock, status)
    assert store.jobs.count_by_status() == {P: 3, R: 2, C: 1, S: 1}


def test_get_and_events_of_a_new_job(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    assert store.jobs.get(999_999) is None
    assert store.jobs.events(999_999) == []
    job_id = insert_job(store, clock.now(), type="greet", queue="mail", priority=4)
    assert job_id is not None
    job = reload(store, job_id)
    assert (job.type, job.queue, job.priority, job.status, job.attempt, job.max_attempts) == (
        "greet",
        "mail",
        4,
        P,
        1,
        3,
    )
    assert job.args == {"a": 1, "b": 2}
    assert job.created_at == job.run_at == clock.now()
    [event] = store.jobs.events(job_id)
    assert (event.verb, event.from_status, event.to_status, event.actor, event.attempt) == (
        "submit",
        None,
        P,
        "tester",
        1,
    )


def test_a_schedule_fires_once_per_fire_time(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    first = insert_job(store, clock.now(), schedule="nightly", fire_time=100.0)
    assert first is not None
    rows = count_rows(store)
    assert insert_job(store, clock.now(), schedule="nightly", fire_time=100.0) is None
    assert count_rows(store) == rows
    assert insert_job(store, clock.now(), schedule="nightly", fire_time=200.0) is not None


def test_the_claim_reads_the_claim_index(engine: Engine, clock: ManualClock) -> None:
    """A table full of ended jobs (or of pending ones) must not make each claim scan or sort."""
    store = engine.store
    now = clock.now()
    columns = ("type", "queue", "priority", "status", "args", "run_at", "created_at", "attempt")
    columns += ("max_attempts",)
    rows = [
        ("add", "default", n % 5, "SUCCESS" if n % 4 else "PENDING", "{}", now, now, 1, 1)
        for n in range(4000)
    ]
    with store.database.transaction() as transaction:
        transaction.insert_rows("jobs", columns, rows)
        if store.database.dialect == "postgresql":  # as autovacuum would; SQLite is left as is
            transaction.execute("ANALYZE jobs")
    for queue_count in (0, 2):
        explain = "EXPLAIN QUERY PLAN " if store.database.dialect == "sqlite" else "EXPLAIN "
        parameters = (now, *["default", "mail"][:queue_count], 10, "w", now, now)
        with store.database.transaction() as transaction:
            plan = transaction.execute(explain + store.jobs.claim_sql(queue_count), parameters)
        text = "\n".join(str(list(row.values())[-1]) for row in plan)
        assert "jobs_claim" in text, text
        assert "TEMP B-TREE" not in text and "Sort" not in text, text
    assert len(store.jobs.claim("w", ["default"], 10_000, now)) == 1000


def _finishes(jobs: Sequence[Job]) -> list[list[Move]]:
    return [[Move(job.id, job.attempt, R, S, "finish", WORKER, worker=WORKER)] for job in jobs]


def test_outcomes_and_the_claim_of_their_successors_commit_together(
    engine: Engine, clock: ManualClock
) -> None:
    """A worker's cycle: its outcomes recorded and the jobs that take their place claimed and
    started, in one transaction (one turn of SQLite's write lock), every move with its event."""
    store = engine.store
    finished = [job_in(store, clock, R) for _ in range(2)]
    waiting = [insert_job(store, clock.now()) for _ in range(3)]
    clock.advance(1)
    won, claimed = store.jobs.record_then_claim(
        _finishes(finished), clock.now(), Claim(WORKER, (), 2, ("add",))
    )
    assert [move.target if move else None for move in won] == [S, S]
    assert [job.id for job in claimed] == waiting[:2]
    assert [reload(store, job_id).status for job_id in waiting] == [R, R, P]
    last = [store.jobs.events(job.id)[-1] for job in finished]
    last += [event for job_id in waiting[:2] for event in store.jobs.events(job_id)[-2:]]
    verbs = ["finish", "finish", "claim", "start", "claim", "start"]
    assert [event.verb for event in last] == verbs
    assert {event.at for event in last} == {clock.now()}
    assert [event.verb for event in store.jobs.events(waiting[0])] == ["submit", "claim", "start"]


def test_an_outcome_whose_first_move_loses_takes_its_next_with_the_claim(
    engine: Engine, clock: ManualClock
) -> None:
    """A job canceled while it ran is recorded by its second choice (from TO_CANCEL), in the
    same call that records the others and claims."""
    store = engine.store
    running, canceling = job_in(store, clock, R), job_in(store, clock, T)
    waiting = insert_job(store, clock.now())
    choices = [
        [Move(job.id, job.attempt, source, S, "finish", WORKER, worker=WORKER) for source in (R, T)]
        for job in (running, canceling)
    ]
    won, claimed = store.jobs.record_then_claim(
        choices, clock.now(), Claim(WORKER, (), 1, ("add",))
    )
    assert [move.source if move else None for move in won] == [R, T]
    assert [job.id for job in claimed] == [waiting]
    assert (reload(store, running.id).status, reload(store, canceling.id).status) == (S, S)


def test_a_refused_claim_leaves_the_outcomes_it_came_with_unwritten(
    engine: Engine, clock: ManualClock
) -> None:
    """All or nothing: when the database refuses the claim, the outcomes of the same
    transaction are not half-written (the recorder then writes them alone)."""
    store = engine.store
    finished = job_in(store, clock, R)
    refused = insert_job(store, clock.now())
    assert refused is not None
    execute(store, REFUSE_STARTS)
    before = count_rows(store)
    with pytest.raises(Exception, match="start refused by the test"):
        store.jobs.record_then_claim(
            _finishes([finished]), clock.now(), Claim(WORKER, (), 1, ("add",))
        )
    assert count_rows(store) == before
    assert (reload(store, finished.id).status, reload(store, refused).status) == (R, P)
    assert store.jobs.move_first(_finishes([finished]), clock.now())[0] is not None
    assert reload(store, finished.id).status is S


def test_an_error_that_ends_the_transaction_inside_sqlite_is_reported_as_itself(
    sqlite_url: str,
) -> None:
    engine = Engine(sqlite_url)
    store = engine.store
    try:
        with store.database.transaction() as transaction:
            transaction.execute(
                "CREATE TRIGGER abandon BEFORE INSERT ON job_events WHEN NEW.reason = 'abandon'"
                " BEGIN SELECT RAISE(ROLLBACK, 'abandoned by a trigger'); END"
            )
        job_id = insert_job(store, 1.0)
        assert job_id is not None
        with pytest.raises(Exception, match="abandoned by a trigger"):
            store.jobs.move(Move(job_id, 1, P, C, "cancel", "t", "abandon"), 2.0)
        assert reload(store, job_id).status is P
        store.jobs.move(Move(job_id, 1, P, C, "cancel", "t", "fine"), 2.0)  # the connection works
        assert reload(store, job_id).status is C
    finally:
        engine.close()


def test_claims_and_finishes_read_only_their_rows_when_statistics_are_stale(
    postgres_url: str,
) -> None:
    """Statistics taken while the table was all but empty, then a burst of submits: a planner
    that believes the table holds one row must still not read every row to claim or finish."""
    engine = Engine(postgres_url)
    store, now = engine.store, 1_000.0
    _insert_pending(store, 2_000, now + 3_600)
    with store.database.transaction() as transaction:
        transaction.execute("DELETE FROM jobs WHERE id < (SELECT max(id) FROM jobs)")
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE jobs")
    _insert_pending(store, 20_000, now)

    with store.database.transaction() as transaction:
        transaction.execute(store.database.claim_setting)
        claim = _rows_of_jobs_read(
            transaction, store.jobs.claim_sql(0, 0, True), (now, 25, "w", now, now, now)
        )
    claimed = store.jobs.claim("w", [], 25, now, start=True)
    finish = _rows_read_finishing(store, claimed, now)
    engine.close()

    assert len(claimed) == 25
    assert claim <= 3 * 25, f"the claim read {claim} rows of jobs"  # was 20,000 (a sort of all)
    assert finish <= 3 * 25, f"the finish read {finish} rows of jobs"  # was every row


def _insert_pending(store: Store, count: int, run_at: float) -> None:
    columns = ("type", "queue", "priority", "status", "args", "run_at", "created_at", "attempt")
    rows = [("add", "default", 0, "PENDING", "{}", run_at, run_at, 1, 1)] * count
    with store.database.transaction() as transaction:
        transaction.insert_rows("jobs", (*columns, "max_attempts"), rows)


def _rows_read_finishing(store: Store, jobs: list[Job], now: float) -> int:
    """Rows of the jobs table read by the statement that finishes `jobs` (RUNNING on "w")."""
    finishes = [
        Move(job.id, job.attempt, R, S, "finish", "w", changes={"finished_at": now}, worker="w")
        for job in jobs
    ]
    with store.database.transaction() as transaction:
        assert isinstance(transaction, PostgresTransaction)
        sql, params = transaction.set_statement(
            "jobs", changes_of(finishes, now), "job_events", EVENT_FIELDS
        )
        return _rows_of_jobs_read(transaction, sql, params)


def _rows_of_jobs_read(transaction: Transaction, sql: str, params: Sequence[Any]) -> int:
    """Rows the statement's scans of `jobs` returned or filtered away (EXPLAIN ANALYZE)."""
    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
    [row] = transaction.execute(explain, params)

    def read(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == "jobs" and "Scan" in str(node["Node Type"]):
            seen = float(node["Actual Rows"]) + float(node.get("Rows Removed by Filter", 0))
            own = int(seen * float(node["Actual Loops"]))
        return own + sum(read(child) for child in node.get("Plans", []))

    return read(row["QUERY PLAN"][0]["Plan"])


def test_a_batch_of_finishes_reads_its_rows_not_the_history(postgres_url: str) -> None:
    """Statistics never taken (a new table), 20,000 finished jobs and 25 running: each finish
    reads at most the running jobs, never the history."""
    engine = Engine(postgres_url)
    store, now = engine.store, 1_000.0
    _insert_pending(store, 20_000, now)
    with store.database.transaction() as transaction:
        transaction.execute("UPDATE jobs SET status = 'SUCCESS', finished_at = ?", (now,))
    _insert_pending(store, 25, now)
    claimed = store.jobs.claim("w", [], 25, now, start=True)
    finish = _rows_read_finishing(store, claimed, now)
    engine.close()

    assert len(claimed) == 25
    assert finish <= 25 * 25, f"the finish read {finish} rows of jobs"  # each: the running ones
