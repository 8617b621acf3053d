"""The store contract suite, moves: every move of the table, its event, and races it loses."""

from __future__ import annotations

import threading

import pytest
from job_steps import WORKER, C, F, P, Q, R, S, T, count_rows, job_in, reload

from jobengine import Engine, IllegalMove, ManualClock, MoveConflict, Status
from jobengine.model import MOVES, REAP_MOVES, LogLine
from jobengine.store import Move, Store

ALL_MOVES = sorted(
    {(source, target, verb) for (source, target), verb in MOVES.items()}
    | {(source, target, "reap") for source, target in REAP_MOVES}
)


# -- every move of the table ---------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target", "verb"), ALL_MOVES, ids=str)
def test_every_move_is_applied_with_its_event(
    engine: Engine, clock: ManualClock, source: Status, target: Status, verb: str
) -> None:
    store = engine.store
    job = job_in(store, clock, source)
    events_before = store.jobs.events(job.id)
    clock.advance(5)
    move = Move(
        job.id, job.attempt, source, target, verb, "tester", f"why {verb}", {"output": "o"}, WORKER
    )
    if source is P:  # a pending job has no worker yet
        move = Move(job.id, job.attempt, source, target, verb, "tester", f"why {verb}")
    store.jobs.move(move, clock.now())
    moved = reload(store, job.id)
    assert moved.status is target
    assert moved.output == ("o" if source is not P else None)
    events = store.jobs.events(job.id)
    assert events[: len(events_before)] == events_before
    assert len(events) == len(events_before) + 1
    event = events[-1]
    assert (event.job_id, event.verb, event.from_status, event.to_status) == (
        job.id,
        verb,
        source,
        target,
    )
    assert (event.actor, event.reason, event.attempt, event.at) == (
        "tester",
        f"why {verb}",
        job.attempt,
        clock.now(),
    )


def test_move_many_applies_every_move_of_the_table_at_once(
    engine: Engine, clock: ManualClock
) -> None:
    store = engine.store
    jobs = [job_in(store, clock, source) for source, _, _ in ALL_MOVES]
    clock.advance(1)
    moves = [
        Move(job.id, job.attempt, source, target, verb, "batch", f"batch {verb}")
        for job, (source, target, verb) in zip(jobs, ALL_MOVES, strict=True)
    ]
    assert store.jobs.move_many(moves, clock.now()) == [True] * len(moves)
    for job, (source, target, verb) in zip(jobs, ALL_MOVES, strict=True):
        assert reload(store, job.id).status is target
        event = store.jobs.events(job.id)[-1]
        assert (event.verb, event.from_status, event.to_status, event.actor, event.reason) == (
            verb,
            source,
            target,
            "batch",
            f"batch {verb}",
        )
        assert event.at == clock.now()


def test_retry_can_bump_the_attempt_and_the_event_keeps_the_old_one(
    engine: Engine, clock: ManualClock
) -> None:
    store = engine.store
    job = job_in(store, clock, R)
    changes = {"attempt": 2, "run_at": clock.now() + 30, "worker": None}
    store.jobs.move(Move(job.id, 1, R, P, "retry", "runner", "boom", changes, WORKER), clock.now())
    retried = reload(store, job.id)
    assert (retried.status, retried.attempt, retried.worker) == (P, 2, None)
    assert store.jobs.events(job.id)[-1].attempt == 1
    with pytest.raises(MoveConflict, match="expected PENDING attempt 1"):
        store.jobs.move(Move(job.id, 1, P, C, "cancel", "api"), clock.now())
    store.jobs.move(Move(job.id, 2, P, C, "cancel", "api"), clock.now())
    assert reload(store, job.id).status is C


def test_an_illegal_move_cannot_even_be_built() -> None:
    with pytest.raises(IllegalMove):
        Move(1, 1, P, R, "start", "tester")
    with pytest.raises(IllegalMove):
        Move(1, 1, S, P, "retry", "tester")
    with pytest.raises(ValueError, match="not job columns"):
        Move(1, 1, P, Q, "claim", "tester", changes={"no_such_column": 1})


# -- the event row is written in the same transaction ---------------------------------------------


def refuse_events_with_reason(store: Store, reason: str) -> None:
    """Make the database itself reject an event row, to prove the move is rolled back with it."""
    with store.database.transaction() as transaction:
        if store.database.dialect == "sqlite":
            transaction.execute(
                "CREATE TRIGGER refuse_event BEFORE INSERT ON job_events"
                f" WHEN NEW.reason = '{reason}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            transaction.execute(
                "ALTER TABLE job_events ADD CONSTRAINT refuse_event"
                f" CHECK (reason IS DISTINCT FROM '{reason}')"
            )


def test_a_failed_event_insert_undoes_the_move(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    first, second = job_in(store, clock, R), job_in(store, clock, R)
    refuse_events_with_reason(store, "refused")
    rows_before = count_rows(store)
    with pytest.raises(Exception, match="refuse"):
        store.jobs.move(Move(first.id, 1, R, S, "finish", "t", "refused", {}, WORKER), 1.0)
    batch = [
        Move(first.id, 1, R, S, "finish", "t", "fine", {}, WORKER),
        Move(second.id, 1, R, S, "finish", "t", "refused", {}, WORKER),
    ]
    with pytest.raises(Exception, match="refuse"):
        store.jobs.move_many(batch, 1.0)
    assert reload(store, first.id) == first
    assert reload(store, second.id) == second
    assert count_rows(store) == rows_before


# -- guarded moves losing races -------------------------------------------------------------------

LOSERS = {
    "wrong status": (
        R,
        lambda job: Move(job.id, job.attempt, Q, R, "start", "t", None, {}, WORKER),
    ),
    "wrong attempt": (
        Q,
        lambda job: Move(job.id, job.attempt + 1, Q, R, "start", "t", None, {}, WORKER),
    ),
    "wrong worker": (R, lambda job: Move(job.id, job.attempt, R, S, "finish", "t", None, {}, "w9")),
    "already cancelled": (C, lambda job: Move(job.id, job.attempt, P, C, "cancel", "t")),
    "finished": (S, lambda job: Move(job.id, job.attempt, R, F, "reap", "t", None, {}, WORKER)),
}


@pytest.mark.parametrize("case", sorted(LOSERS))
def test_a_move_that_lost_a_race_raises_and_writes_nothing(
    engine: Engine, clock: ManualClock, case: str
) -> None:
    store = engine.store
    status, make_move = LOSERS[case]
    job = job_in(store, clock, status)
    rows_before = count_rows(store)
    move = make_move(job)
    with pytest.raises(MoveConflict, match=f"{move.verb} of job {job.id} lost a race"):
        store.jobs.move(move, clock.now() + 1)
    assert reload(store, job.id) == job
    assert count_rows(store) == rows_before
    assert store.jobs.move_many([move], clock.now() + 1) == [False]
    assert reload(store, job.id) == job
    assert count_rows(store) == rows_before


def test_a_move_of_a_missing_job_raises(engine: Engine) -> None:
    with pytest.raises(MoveConflict, match="job 424242 does not exist"):
        engine.store.jobs.move(Move(424242, 1, P, C, "cancel", "t"), 1.0)


def test_move_many_reports_each_move(engine: Engine, clock: ManualClock) -> None:
    store = engine.store
    queued, running, pending = (job_in(store, clock, s) for s in (Q, R, P))
    rows_before = count_rows(store)
    moves = [
        Move(queued.id, 1, Q, R, "start", "t", None, {}, WORKER),  # wins
        Move(running.id, 1, Q, R, "start", "t", None, {}, WORKER),  # already running
        Move(queued.id, 1, Q, P, "release", "t", None, {}, WORKER),  # lost to the first move
        Move(pending.id, 2, P, C, "cancel", "t"),  # wrong attempt
        Move(pending.id, 1, P, C, "cancel", "t"),  # wins
    ]
    assert store.jobs.move_many(moves, clock.now()) == [True, False, False, False, True]
    assert reload(store, queued.id).status is R
    assert reload(store, running.id) == running
    assert reload(store, pending.id).status is C
    assert count_rows(store) == (rows_before[0], rows_before[1] + 2)
    assert store.jobs.move_many([], clock.now()) == []


@pytest.mark.timeout(60)
def test_concurrent_moves_of_one_job_have_exactly_one_winner(
    engine: Engine, clock: ManualClock
) -> None:
    store = engine.store
    jobs = [job_in(store, clock, R) for _ in range(10)]
    contenders = [
        (T, "cancel"),
        (S, "finish"),
        (F, "reap"),
        (P, "retry"),
    ]
    barrier = threading.Barrier(len(contenders))
    wins: dict[int, list[Status]] = {job.id: [] for job in jobs}
    failures: list[BaseException] = []

    def contend(target: Status, verb: str) -> None:
        try:
            for job in jobs:
                barrier.wait(timeout=30)
                try:
                    store.jobs.move(Move(job.id, 1, R, target, verb, verb, None, {}, WORKER), 2.0)
                except MoveConflict:
                    continue
                wins[job.id].append(target)
        except BaseException as error:
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=contend, args=pair) for pair in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert not failures
    for job in jobs:
        assert len(wins[job.id]) == 1, wins[job.id]
        assert reload(store, job.id).status is wins[job.id][0]
        moves_after_start = [event for event in store.jobs.events(job.id) if event.at == 2.0]
        assert len(moves_after_start) == 1


# -- text through the batch statements -----------------------------------------------------------

AWKWARD = ['"', "\\", '\\"', "{a,b}", "NULL", "", " ", "a,b", "é ☃ \n\t", "'; DROP TABLE jobs; --"]


def test_awkward_text_survives_every_batch_statement(engine: Engine, clock: ManualClock) -> None:
    """submit_many, log lines and batched moves send their values as arrays on PostgreSQL:
    quotes, backslashes, braces, commas, NULL as a word and empty text come back as sent."""
    store = engine.store
    ids = engine.submit_many("greet", [{"name": text} for text in AWKWARD])
    assert [engine.get(job_id).args["name"] for job_id in ids] == AWKWARD
    store.logs.append([LogLine(ids[0], 1, clock.now(), "INFO", text) for text in AWKWARD])
    assert [line.text for line in store.logs.read(ids[0])] == AWKWARD
    moves = [
        Move(job_id, 1, P, C, "cancel", text or "someone", text, {"output": text, "progress": 0.5})
        for job_id, text in zip(ids, AWKWARD, strict=True)
    ]
    assert store.jobs.move_many(moves, clock.now()) == [True] * len(moves)
    for job_id, text in zip(ids, AWKWARD, strict=True):
        job, event = reload(store, job_id), store.jobs.events(job_id)[-1]
        assert (job.output, job.progress, event.reason) == (text, 0.5, text)


# -- statements that commit alone ----------------------------------------------------------------


def test_a_failed_statement_that_commits_alone_leaves_the_connection_as_the_pool_expects(
    engine: Engine, clock: ManualClock, database_url: str
) -> None:
    """Not atomic: PostgreSQL keeps what each statement committed; SQLite undoes all of it.
    Either way the connection goes back to the pool idle and in a transaction mode, so the
    next transaction's rollback still undoes its writes."""
    store, job = engine.store, job_in(engine.store, clock, P)
    failing = pytest.raises(Exception, match="no_such_column")
    with failing, store.database.transaction(atomic=False) as transaction:
        transaction.execute("UPDATE jobs SET priority = 9 WHERE id = ?", (job.id,))
        transaction.execute("SELECT no_such_column FROM jobs")
    kept = 9 if database_url.startswith("postgresql") else job.priority
    assert reload(store, job.id).priority == kept
    for _ in range(3):
        with pytest.raises(RuntimeError), store.database.transaction() as transaction:
            transaction.execute("UPDATE jobs SET priority = 5 WHERE id = ?", (job.id,))
            raise RuntimeError("undo it")
        assert reload(store, job.id).priority == kept
