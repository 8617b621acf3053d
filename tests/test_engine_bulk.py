"""engine.submit_many: validated like submit, all or nothing, one statement per chunk, one
wake-up, and inside the caller's transaction when it gives its connection."""

from __future__ import annotations

import pytest

from jobengine import Engine, InvalidArguments, Status, UnknownJobType


def test_submit_many_inserts_every_job_with_its_event_and_wakes_once(engine: Engine) -> None:
    wakes: list[int] = []
    engine.on_submit(lambda: wakes.append(1))
    ids = engine.submit_many("add", [{"a": n, "b": 1} for n in range(1200)], priority=3)
    assert len(ids) == 1200 and ids == sorted(ids) and len(set(ids)) == 1200
    assert wakes == [1]
    first, last = engine.get(ids[0]), engine.get(ids[-1])
    assert (first.args, last.args) == ({"a": 0, "b": 1}, {"a": 1199, "b": 1})
    assert first.status is Status.PENDING and first.priority == 3
    assert [event.verb for event in engine.events(ids[700])] == ["submit"]
    assert engine.submit_many("add", []) == []


def test_one_bad_job_writes_none_of_them(engine: Engine) -> None:
    with pytest.raises(InvalidArguments):
        engine.submit_many("add", [{"a": 1, "b": 2}, {"a": 1}])
    with pytest.raises(UnknownJobType):
        engine.submit_many("missing", [{}])
    assert engine.list() == []


def test_submit_many_joins_the_callers_transaction(engine: Engine, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        import sqlite3

        from jobengine.store.sqlite import sqlite_path

        connection = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
        connection.execute("BEGIN")
        engine.submit_many("add", [{"a": 1, "b": 2}] * 3, connection=connection)
        connection.execute("ROLLBACK")
        connection.close()
    else:
        import psycopg

        with psycopg.connect(database_url) as connection:
            engine.submit_many("add", [{"a": 1, "b": 2}] * 3, connection=connection)
            connection.rollback()
    assert engine.list() == []  # rolled back with the caller's own writes
