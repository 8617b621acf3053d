"""Shared steps for the store and engine tests: insert jobs and walk them along allowed moves."""

from __future__ import annotations

from typing import Any

from jobengine import Job, ManualClock, Status
from jobengine.store import Move, NewJob, Store

P, Q, R, T, C = Status.PENDING, Status.QUEUED, Status.RUNNING, Status.TO_CANCEL, Status.CANCELED
S, W, F = Status.SUCCESS, Status.WARNING, Status.FAILURE
WORKER = "worker-1"
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


REFUSE_STARTS = {  # a trigger that makes every update to RUNNING fail
    "sqlite": [
        "CREATE TRIGGER refuse_starts BEFORE UPDATE ON jobs"
        " WHEN NEW.status = 'RUNNING'"
        " BEGIN SELECT RAISE(ABORT, 'start refused by the test'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_start() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'start refused by the test'; END $$",
        "CREATE TRIGGER refuse_starts BEFORE UPDATE ON jobs FOR EACH ROW"
        " WHEN (NEW.status = 'RUNNING')"
        " EXECUTE FUNCTION refuse_start()",
    ],
}
ALLOW_STARTS = {
    "sqlite": ["DROP TRIGGER refuse_starts"],
    "postgresql": ["DROP TRIGGER refuse_starts ON jobs"],
}


def execute(store: Store, statements: dict[str, list[str]]) -> None:
    """The statements of this store's dialect (REFUSE_STARTS, ALLOW_STARTS), in one transaction:
    a start the database itself turns down, as a constraint or another tool's trigger would."""
    with store.database.transaction() as transaction:
        for statement in statements[store.database.dialect]:
            transaction.execute(statement)
