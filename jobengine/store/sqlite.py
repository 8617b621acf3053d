"""The SQLite backend: one file on one host, WAL, BEGIN IMMEDIATE for every write."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from jobengine.errors import ConfigurationError, DatabaseUnavailable
from jobengine.store.database import URL_HELP, Database, Row, Transaction

BUSY_TIMEOUT_MS = 30_000
AUTOCOMMIT_HELP = (
    "connection= is in autocommit mode with no open transaction, so the job would not commit "
    "or roll back with your own writes; execute BEGIN on it first"
)


def sqlite_path(url: str) -> str:
    """The file path of a sqlite:/// URL."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest in ("/", ""):
        raise ConfigurationError(f"SQLite URL {url!r} names no file; {URL_HELP}")
    path = rest[1:]
    if path in (":memory:", "") or path.startswith("?"):
        raise ConfigurationError(
            f"SQLite URL {url!r} names no file (workers in other processes need one); {URL_HELP}"
        )
    return path.split("?", 1)[0]


class SqliteTransaction(Transaction):
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(sql, tuple(params))
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(sql, [tuple(row) for row in rows])


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"the folder {directory!r} of SQLite database {self.path!r} does not exist; "
                "create it or point the URL elsewhere"
            )
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            raise DatabaseUnavailable(
                f"cannot open SQLite database {self.path!r}: {error}"
            ) from error
        self._local.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as error:
            raise DatabaseUnavailable(f"SQLite database {self.path!r}: {error}") from error
        try:
            yield SqliteTransaction(connection)
        except BaseException:
            if connection.in_transaction:  # SQLite may have rolled back already (RAISE(ROLLBACK))
                connection.execute("ROLLBACK")
            raise
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:  # never leave the thread's connection mid-transaction
                connection.execute("ROLLBACK")
            raise DatabaseUnavailable(f"SQLite database {self.path!r}: {error}") from error

    def foreign_transaction(self, connection: Any) -> Transaction:
        if not isinstance(connection, sqlite3.Connection):
            raise ConfigurationError(
                f"connection= must be a sqlite3.Connection for {self.url!r}, "
                f"not {type(connection).__name__}"
            )
        autocommit = getattr(connection, "autocommit", -1)  # Python 3.12+; -1: legacy control
        commits_each = autocommit is True or (
            autocommit == -1 and connection.isolation_level is None
        )
        if commits_each and not connection.in_transaction:
            raise ConfigurationError(AUTOCOMMIT_HELP)
        return SqliteTransaction(connection)

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
        self._local = threading.local()
