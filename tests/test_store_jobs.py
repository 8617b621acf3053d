"""The store contract suite: moves, races, claims, pagination and events on both backends."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jobengine import Engine, IllegalMove, Job, ManualClock, MoveConflict, Status
from jobengine.model import MOVES, REAP_MOVES
from jobengine.store import Move, NewJob, Store

P, Q, R, T, C = Status.PENDING, Status.QUEUED, Status.RUNNING, Status.TO_CANCEL, Status.CANCELED
S, W, F = Status.SUCCESS, Status.WARNING, Status.FAILURE
WORKER = "worker-1"
ALL_MOVES = sorted(
    {(source, target, verb) for (source, target), verb in MOVES.items()}
    | {(source, target, "reap") for source, target in REAP_MOVES}
)
# How a fresh job reaches each status through allowed moves only.
PATHS: dict[Status, list[tuple[Status, str]]] = {
    P: [],
    Q: [(Q, "claim")],
    R: [(Q, "claim"), (R, "start")],
    T: [(Q, "claim"), (R, "start"), (T, "cancel")],
    C: [(C, "cancel")],
    S: [(Q, "claim"), (R, "start"), (S, "finish")],
    W: [(Q, "claim"), (R, "start"), (W, "finish")],
    F: [(Q, "claim"), (R, "start"), (F, "finish")],
}


def insert_job(
    store: Store,
    now: float,
    *,
    type: str = "add",
    queue: str = "default",
    priority: int = 0,
    run_at: float | None = None,
    schedule: str | None = None,
    fire_time: float | None = None,
) -> int | None:
    new_job = NewJob(
        type,
        '{"a": 1, "b": 2}',
        queue,
        priority,
        now if run_at is None else run_at,
        3,
        schedule=schedule,
        fire_time=fire_time,
    )
    with store.database.transaction() as transaction:
        return store.jobs.insert(transaction, new_job, now, "tester")


def job_in(store: Store, clock: ManualClock, status: Status, **options: Any) -> Job:
    """A new job brought to `status` through allowed moves."""
    job_id = insert_job(store, clock.now(), **options)
    assert job_id is not None
    job = store.jobs.get(job_id)
    assert job is not None
    for target, verb in PATHS[status]:
        changes = {"worker": WORKER, "queued_at": clock.now()} if verb == "claim" else {}
        worker = job.worker  # guard on the owner once there is one
        move = Move(job.id, job.attempt, job.status, target, verb, "setup", None, changes, worker)
        store.jobs.move(move, clock.now())
        job = store.jobs.get(job_id)
        assert job is not None and job.status is target
    return job


def count_rows(store: Store) -> tuple[int, int]:
    with store.database.transaction(write=False) as transaction:
        jobs = transaction.execute("SELECT COUNT(*) AS n FROM jobs")[0]["n"]
        events = transaction.execute("SELECT COUNT(*) AS n FROM job_events")[0]["n"]
    return int(jobs), int(events)


def reload(store: Store, job_id: int) -> Job:
    job = store.jobs.get(job_id)
    assert job is not None
    return job


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
    "wrong status": (R, lambda job: Move(job.id, job.attempt, Q, R, "start", "t", None, {}, WORKER)),
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
    batch = store.jobs.claim("w1", [], 100, now)
    assert [job.id for job in batch] == [again[2], again[5], again[1], again[0], again[3], again[4]]


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
    default, mail, reports = (insert_job(store, now, queue=q) for q in ("default", "mail", "reports"))
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
