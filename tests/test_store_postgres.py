"""The PostgreSQL backend's own behaviour: what one statement on its own costs in round trips."""

from __future__ import annotations

from jobengine.store import open_database

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
