"""Fault: a ladder step's note event races the job's terminal move (no note may come after it)."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fault_steps import TERMINAL, events_after_terminal, statuses
from invariants import check_invariants
from waiting import wait_for, worker_thread

from jobengine import Engine, Status
from jobengine.store import Move
from jobengine.store.sqlite import sqlite_path
from jobengine.worker import Worker

KINDS = ("cancel", "timeout", "timeout_first")
ROUNDS = 18
TIMEOUT = 0.5  # seconds; the test takes the lock well within it
WAIT = 10.0
GATE = threading.Event()  # opened by the test: the job of the round returns


def register(engine: Engine) -> Engine:
    def gated() -> str:
        if not GATE.wait(WAIT):
            raise RuntimeError("the test never opened the gate")
        return "finished"

    engine.job(gated)
    engine.job(gated, name="gated_timed", timeout=TIMEOUT)
    return engine


def in_frame(thread_name: str, function: str) -> bool:
    """Whether the named thread is running inside a function of that name right now."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or 0) if thread.name == thread_name else None
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
    return False


@contextmanager
def events_held(engine: Engine) -> Iterator[None]:
    """Hold back every new event row from another connection, as a long maintenance
    transaction would: SQLite's write lock; on PostgreSQL a lock on job_events."""
    if engine.store.database.dialect == "sqlite":
        connection = sqlite3.connect(sqlite_path(engine.url), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    import psycopg

    with psycopg.connect(engine.url, autocommit=True) as connection:
        connection.execute("BEGIN")
        connection.execute("LOCK TABLE job_events IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    try:
        wait_for(condition, timeout)
    except AssertionError:
        return False
    return True


def request_cancel(engine: Engine, job_id: int) -> None:
    """RUNNING -> TO_CANCEL as engine.cancel writes it, without the notification that would
    wake the worker at once (it finds the request at its next cancel poll)."""
    job = engine.get(job_id)
    now = engine.clock.now()
    changes = {"cancel_requested_at": now}
    move = Move(
        job_id, job.attempt, Status.RUNNING, Status.TO_CANCEL, "cancel", "test", None, changes
    )
    engine.store.jobs.move(move, now)


def recorder_idle(worker: Worker) -> bool:
    """The last round's lines and notes are written: the recorder starts the round clean."""
    notes = getattr(worker.recorder, "notes", [])  # where ladder notes wait to be written
    return worker.logs.buffered == 0 and not notes and not worker.running


def stop_requested(worker: Worker, job_id: int) -> bool:
    """The ladder has taken step 1 (the flag) for the job, which the worker still holds."""
    running = worker.running.get(job_id)
    return running is not None and running.context.stop_kind is not None


def returned(worker: Worker, job_id: int) -> bool:
    running = worker.running.get(job_id)
    return running is None or not running.context.running


def recorder_writing() -> bool:
    """The recorder waits on the database, whatever it writes first."""
    return any(in_frame("recorder", name) for name in ("transaction", "note", "_write_batch"))


def race_once(observer: Engine, worker: Worker, kind: str) -> tuple[int, bool]:
    """One job finishes while event rows are held back, around its timeout or a cancel, so
    that the ladder's step note and the job's terminal move wait together; return the job and
    whether the race was built.

    "cancel", "timeout": the outcome waits first, the stop comes while it waits (a note taken
    after the outcome's batch was begun). "timeout_first": the stop comes first, then the job
    finishes, and both wait.
    """
    GATE.clear()
    wait_for(lambda: recorder_idle(worker), WAIT, "the recorder to have written everything")
    job_id = observer.submit("gated" if kind == "cancel" else "gated_timed")
    wait_for(lambda: statuses(observer, [job_id])[job_id] == "RUNNING", WAIT, "the job to run")
    if kind == "cancel":
        request_cancel(observer, job_id)
    with events_held(observer):
        if kind == "timeout_first":
            raced = eventually(lambda: stop_requested(worker, job_id), TIMEOUT + 2.0)
            GATE.set()  # it finishes after its timeout's step 1, which it ignores
            raced = raced and eventually(
                lambda: returned(worker, job_id) and recorder_writing(), WAIT
            )
        else:
            GATE.set()  # it finishes well before its timeout; its outcome waits for the lock
            raced = eventually(lambda: in_frame("recorder", "_write_batch"), WAIT)
            raced = raced and eventually(lambda: stop_requested(worker, job_id), TIMEOUT + 2.0)
    wait_for(lambda: statuses(observer, [job_id])[job_id] in TERMINAL, WAIT, "the job to end")
    return job_id, raced


@pytest.mark.timeout(120)
def test_ladder_notes_never_land_after_the_terminal_move(database_url: str) -> None:
    started = time.monotonic()
    engine = register(Engine(database_url))
    observer = register(Engine(database_url))
    # One job at a time (no claim while the lock is held), no heartbeat during the test.
    settings = {"concurrency": 1, "heartbeat_interval": 60.0, "dead_after": 120.0}
    raced = []
    with worker_thread(engine, poll_interval=0.05, shutdown_timeout=2.0, **settings) as worker:
        for number in range(ROUNDS):
            job_id, both = race_once(observer, worker, KINDS[number % len(KINDS)])
            raced += [job_id] if both else []
    assert len(raced) >= ROUNDS * 2 // 3, f"the race was built in {len(raced)} of {ROUNDS} rounds"
    ended = statuses(observer, range(1, ROUNDS + 1))
    assert set(ended.values()) == {"SUCCESS"}, ended  # each finished before it was stopped
    late = events_after_terminal(observer)
    assert not late, f"{len(late)} notes after a terminal move:\n" + "\n".join(late)
    engine.close()
    observer.close()
    check_invariants(database_url)
    print(f"race built in {len(raced)} of {ROUNDS} rounds in {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(30)
def test_note_for_a_job_already_ended_writes_nothing(database_url: str) -> None:
    engine = register(Engine(database_url))
    job_id = engine.submit("gated")
    running = engine.get(job_id)
    engine.cancel(job_id)  # PENDING -> CANCELED: the note below comes too late
    before = engine.events(job_id)
    for status in (Status.PENDING, Status.RUNNING, Status.TO_CANCEL):
        assert not engine.store.jobs.note(running, status, "cancel", "test", "a late step", 0.0)
    assert engine.events(job_id) == before
    engine.close()
    check_invariants(database_url)
