"""The PostgreSQL backend: a psycopg 3 connection pool, NOTIFY to wake workers on other hosts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from threading import Event
from typing import Any

from jobengine.errors import ConfigurationError, DatabaseUnavailable
from jobengine.store.database import Database, Row, Transaction, describe

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("jobengine.store")
CONNECT_TIMEOUT = 5


def _sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _check_url(url: str) -> None:
    """Raise ConfigurationError naming the fix when a PostgreSQL URL cannot be right."""
    try:
        parameters = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        reason = str(error).strip().replace(url, describe(url))  # never print a password
        raise ConfigurationError(
            f"database URL {describe(url)!r} is malformed: {reason}; "
            "write it as postgresql://user:password@host:5432/database"
        ) from error
    for port in str(parameters.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"database URL {describe(url)!r}: port {port!r} is not a number from 1 to "
                "65535; write it as postgresql://user:password@host:5432/database"
            )


class PostgresTransaction(Transaction):
    dialect = "postgresql"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_sql(sql), tuple(params))
            if cursor.description is None:
                return []
            return list(cursor.fetchall())

    def execute_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        cursors = []
        with self.connection.pipeline():
            for sql, params in statements:
                cursor = self.connection.cursor(row_factory=dict_row)
                cursor.execute(_sql(sql), tuple(params))
                cursors.append(cursor)
        results = [list(cursor.fetchall()) if cursor.description else [] for cursor in cursors]
        for cursor in cursors:
            cursor.close()
        return results

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.connection.cursor() as cursor:
            cursor.executemany(_sql(sql), [tuple(row) for row in rows])


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        if psycopg is None:
            raise ConfigurationError(
                "PostgreSQL support is not installed; run: pip install 'jobengine[postgres]'"
            )
        self.url = url
        _check_url(url)
        self._check_reachable()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            name="jobengine",
            kwargs={"connect_timeout": CONNECT_TIMEOUT},
            timeout=30,
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
        except PoolTimeout as error:
            self.pool.close()
            raise DatabaseUnavailable(
                f"PostgreSQL at {describe(url)!r} accepted a test connection but the pool could "
                f"not open one in {CONNECT_TIMEOUT * 2} s; check the server's max_connections"
            ) from error

    def _check_reachable(self) -> None:
        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as error:
            reason = " ".join(line.strip() for line in str(error).splitlines()) or repr(error)
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {describe(self.url)!r}: {reason}; "
                "check that the server is running and the URL's host, port, user and database"
            ) from error

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        try:
            with self.pool.connection() as connection, connection.transaction():
                yield PostgresTransaction(connection)
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise DatabaseUnavailable(f"PostgreSQL at {describe(self.url)!r}: {error}") from error

    def foreign_transaction(self, connection: Any) -> Transaction:
        if not isinstance(connection, psycopg.Connection):
            raise ConfigurationError(
                f"connection= must be a psycopg.Connection for {describe(self.url)!r}, "
                f"not {type(connection).__name__}"
            )
        idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if connection.autocommit and idle:
            raise ConfigurationError(
                "connection= is in autocommit mode with no open transaction, so the job would "
                "not commit or roll back with your own writes; use `with connection.transaction():`"
            )
        return PostgresTransaction(connection)

    def notify(self, channel: str, payload: str = "") -> None:
        with self.transaction() as transaction:
            transaction.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: Event) -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                ) as connection:
                    connection.execute(f'LISTEN "{channel}"')
                    on_notify("")  # anything sent while we were away: look once
                    while not stop.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            on_notify(notify.payload)
            except psycopg.Error as error:
                log.warning("listen on %s lost (%s); polling until it returns", channel, error)
                stop.wait(1.0)

    def close(self) -> None:
        self.pool.close()
