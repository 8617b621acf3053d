"""SQLite's write lock held by another process: a write waits for it (trying again every 0.05 ms
for 5 ms, then less often, up to every 1 ms) and gives up at the busy timeout, saying the
database is unavailable, having written nothing."""

from __future__ import annotations

import threading

import pytest
from outages import sqlite_write_lock

from jobengine import DatabaseUnavailable, Engine

pytestmark = pytest.mark.timeout(60)


def test_a_write_gives_up_at_the_busy_timeout_and_writes_nothing(sqlite_url: str) -> None:
    engine = Engine(sqlite_url)
    engine.job(lambda: None, name="noop")
    database = engine.store.database
    assert database.path is not None
    database.shorten_waits(0.3)
    with sqlite_write_lock(database.path), pytest.raises(DatabaseUnavailable, match="locked"):
        engine.submit("noop")

    assert list(engine.list()) == []
    engine.close()


def test_a_write_waiting_for_the_lock_goes_through_once_it_is_released(sqlite_url: str) -> None:
    engine = Engine(sqlite_url)
    engine.job(lambda: None, name="noop")
    database = engine.store.database
    assert database.path is not None
    submitted: list[int] = []
    with sqlite_write_lock(database.path):
        writer = threading.Thread(target=lambda: submitted.append(engine.submit("noop")))
        writer.start()
        assert not submitted  # the lock is still held: the submit waits
    writer.join(30)

    assert len(submitted) == 1, "the submit failed instead of waiting"
    assert [job.id for job in engine.list()] == submitted
    engine.close()
