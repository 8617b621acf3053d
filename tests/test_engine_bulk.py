"""engine.submit_many: validated like submit, all or nothing, one statement per chunk, one
wake-up, and inside the caller's transaction when it gives its connection."""

from __future__ import annotations

import pytest

from jobengine import Engine, InvalidArguments, Status, UnknownJobType
from jobengine.model import NewJob


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


def test_jobs_alike_but_for_some_fields_keep_their_order_fields_and_exact_arguments(
    engine: Engine,
) -> None:
    parent = engine.submit("add", a=1, b=2)
    texts = [
        '{"a": "it\'s \\"quoted\\", with a \\\\ and {braces}", "b": 1}',
        '{"a": "\\u00fcn\\u00ef \\u20ac, NULL", "b": 12345678901234567890}',
        '{"a": null, "b": 1.5e-300}',
    ]
    kinds = [("left", None), ("right", parent), ("left", parent)]
    new_jobs = [
        NewJob("add", texts[n // 3], kinds[n % 3][0], 0, 1.0, 1, parent=kinds[n % 3][1])
        for n in range(9)
    ]
    store = engine.store
    with store.database.transaction() as transaction:
        ids = store.jobs.insert_many(transaction, new_jobs, 2.0, "bulk")
    assert len(set(ids)) == 9
    for job_id, new_job in zip(ids, new_jobs, strict=True):
        assert job_id is not None
        [row] = store.database.read("SELECT args, queue, parent FROM jobs WHERE id = ?", (job_id,))
        assert (row["args"], row["queue"], row["parent"]) == (
            new_job.args,
            new_job.queue,
            new_job.parent,
        )
        [event] = engine.events(job_id)
        assert (event.verb, event.actor, event.to_status, event.at) == (
            "submit",
            "bulk",
            Status.PENDING,
            2.0,
        )
