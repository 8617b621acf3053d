"""The PostgreSQL backend's own behaviour: what one statement on its own costs in round trips,
the connection kept for claims, when a silent worker judges itself cut off from the server,
and the array text its batches send."""

from __future__ import annotations

import os
import signal
import socket
import time

import psycopg
import pytest
from private_postgres import ONLY_COMMITS_WRITE_THE_WAL, private_server
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.errors import DatabaseUnavailable
from jobengine.model import Move
from jobengine.store import open_database
from jobengine.store.jobs import Claim
from jobengine.store.postgres import cut_off
from jobengine.store.postgres_transaction import PostgresTransaction, array_text

ALONE = "transaction_timestamp() = statement_timestamp() AS alone"


def test_one_statement_on_its_own_is_not_a_transaction_block(postgres_url: str) -> None:
    """After a BEGIN of its own (a round trip before the statement), the transaction would
    have started before the statement; alone, they start together, and the write commits."""
    database = open_database(postgres_url)
    try:
        assert database.read(f"SELECT {ALONE}") == [{"alone": True}]
        database.write("CREATE TABLE numbers (n INTEGER)")
        assert database.write(f"INSERT INTO numbers VALUES (7) RETURNING {ALONE}") == [
            {"alone": True}
        ]
        assert database.read("SELECT n FROM numbers") == [{"n": 7}]
        with database.transaction(write=False) as transaction:  # a block reads differently
            assert transaction.execute(f"SELECT {ALONE}") == [{"alone": False}]
    finally:
        database.close()


COLUMNS = [  # (the values of one column, their type): of one kind each, then mixed
    ([1, -2, 2**62, 0], "bigint"),
    ([1796387936.70107, -0.5, 1e-300, 1e300, 3.0], "float8"),
    (['{"n": 1}', 'a"b\\c', "", "NULL", "x,y{}", "caf\u00e9 \u2603", " spaced "], "text"),
    ([None, None], "text"),
    (["SUCCESS", None, Status.PENDING], "text"),
    ([1, None, 2.5], "float8"),
    ([True, False, None], "int"),
]


@pytest.mark.parametrize(("values", "kind"), COLUMNS)
def test_array_text_reaches_the_server_as_the_values_it_was_made_of(
    postgres_url: str, values: list[object], kind: str
) -> None:
    database = open_database(postgres_url)
    try:
        rows = database.read(f"SELECT ?::{kind}[] AS column", (array_text(values),))
        expected = [int(v) if isinstance(v, bool) else v for v in values]
        assert rows == [{"column": expected}]
    finally:
        database.close()


def test_a_server_that_takes_the_connection_and_stays_silent_cuts_off_no_one() -> None:
    """A server starting up on a busy machine: the port takes the connection, the answer does
    not come within the probe's second. Every host sees that; a fence would stop jobs for
    nothing (they would be retried after the outage)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        port = silent.getsockname()[1]
        began = time.monotonic()
        assert not cut_off(f"postgresql://postgres@127.0.0.1:{port}/test")
        assert time.monotonic() - began >= 0.9  # it did wait for the answer that never came


def test_a_port_that_refuses_cuts_off_no_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    assert not cut_off(f"postgresql://postgres@127.0.0.1:{port}/test")


def test_a_server_that_answers_cuts_off_no_one(postgres_url: str) -> None:
    assert not cut_off(postgres_url)


def test_claims_run_alone_on_one_connection_with_the_claim_settings(postgres_url: str) -> None:
    """A claim is one statement in autocommit on the connection kept for claims, whose session
    has the planner settings in force; other transactions keep the server's defaults."""
    database = open_database(postgres_url)
    try:
        question = (
            f"SELECT pg_backend_pid() AS pid, current_setting('enable_sort') AS sort, {ALONE}"
        )
        with database.claim_transaction() as transaction:
            [first] = transaction.execute(question)
        with database.claim_transaction() as transaction:
            [second] = transaction.execute(question)
        [pooled] = database.read(question)
    finally:
        database.close()
    assert first == second == {"pid": first["pid"], "sort": "off", "alone": True}
    assert pooled["sort"] == "on"


def test_a_claim_connection_the_server_closed_fails_one_claim_and_loses_no_job(
    postgres_url: str,
) -> None:
    """The server ends the claim connection (a restart, an administrator): that claim raises
    DatabaseUnavailable and takes nothing; the next one opens a new connection and claims."""
    engine = Engine(postgres_url)
    engine.job(name="noop")(_noop)
    try:
        job_id = engine.submit("noop")
        with engine.store.database.claim_transaction() as transaction:
            [row] = transaction.execute("SELECT pg_backend_pid() AS pid")
        engine.store.database.read("SELECT pg_terminate_backend(?)", (row["pid"],))
        with pytest.raises(DatabaseUnavailable):
            engine.store.jobs.claim("w", [], 5, engine.clock.now(), start=True)
        assert engine.get(job_id).status == "PENDING"
        claimed = engine.store.jobs.claim("w", [], 5, engine.clock.now(), start=True)
    finally:
        engine.close()
    assert [job.id for job in claimed] == [job_id]


def test_a_failed_block_on_the_claim_connection_leaves_no_transaction_open(
    postgres_url: str,
) -> None:
    database = open_database(postgres_url)
    try:
        failing = pytest.raises(psycopg.errors.DivisionByZero)
        with failing, database.claim_transaction() as transaction:
            assert isinstance(transaction, PostgresTransaction)
            transaction.block([("SELECT 1", ()), ("SELECT 1 / 0", ())])
        with database.claim_transaction() as transaction:
            assert transaction.execute(f"SELECT {ALONE}") == [{"alone": True}]
    finally:
        database.close()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_claim_alone_is_lost_in_a_crash_before_the_flush_and_its_job_stays_pending() -> None:
    """Decision 0010: a claim committing alone does not wait for the WAL flush; the claim and
    the finish committed together in the recorder's block do. With the WAL writer stopped,
    the server crashes (a killed server process): the lone claim is gone, its job PENDING at
    its attempt as if never claimed; what was committed before it, and the block, are kept."""
    with private_server() as server:
        server.settings = ONLY_COMMITS_WRITE_THE_WAL
        server.restart()
        engine = Engine(server.url)
        engine.job(name="noop")(_noop)
        first, second, third = (engine.submit("noop") for _ in range(3))
        try:
            [_] = engine.store.jobs.claim("w", [], 1, engine.clock.now(), start=True)
            now = engine.clock.now()
            finish = Move(first, 1, Status.RUNNING, Status.SUCCESS, "finish", "w", worker="w")
            _, [claimed] = engine.store.jobs.record_then_claim(
                [[finish]], now, Claim("w", [], 1, ["noop"])
            )
            assert claimed.id == second
            writer = server.process("walwriter")
            os.kill(writer, signal.SIGSTOP)
            [lost] = engine.store.jobs.claim("w", [], 1, engine.clock.now(), start=True)
            assert lost.id == third
            os.kill(writer, signal.SIGKILL)  # the postmaster resets every process
        finally:
            engine.close()
        wait_for(server.answers, 60, "the server to recover from the crash")
        engine = Engine(server.url)
        try:
            jobs = [engine.get(job_id) for job_id in (first, second, third)]
            verbs = [[event.verb for event in engine.events(job.id)] for job in jobs]
        finally:
            engine.close()
    assert [(job.status, job.attempt) for job in jobs] == [
        (Status.SUCCESS, 1),
        (Status.RUNNING, 1),
        (Status.PENDING, 1),
    ]
    assert verbs[0] == ["submit", "claim", "start", "finish"]
    assert verbs[1] == ["submit", "claim", "start"]
    assert verbs[2] == ["submit"]  # the lost claim's events went with it


def _noop() -> None:
    return None
