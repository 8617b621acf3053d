"""The PostgreSQL backend's own behaviour: what a read costs in round trips."""

from __future__ import annotations

from jobengine.store import open_database

ALONE = "SELECT transaction_timestamp() = statement_timestamp() AS alone"


def test_a_read_of_one_query_is_one_statement_not_a_transaction_block(postgres_url: str) -> None:
    """After a BEGIN of its own (a round trip before the query), the transaction would have
    started before the statement."""
    database = open_database(postgres_url)
    try:
        assert database.read(ALONE) == [{"alone": True}]
        with database.transaction(write=False) as transaction:  # the block reads differ
            assert transaction.execute(ALONE) == [{"alone": False}]
    finally:
        database.close()
