"""The PostgreSQL backend's own behaviour: what one statement on its own costs in round trips,
and when a silent worker judges itself cut off from the server."""

from __future__ import annotations

import socket
import time

from jobengine.store import open_database
from jobengine.store.postgres import cut_off

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
