"""The SQLite backend: one file on one host, WAL, BEGIN IMMEDIATE for every write."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from threading import Event
from typing import Any

from jobengine import identity
from jobengine.errors import ConfigurationError, DatabaseUnavailable
from jobengine.interrupts import shielded
from jobengine.store.database import URL_HELP, Database, Row, Transaction
from jobengine.store.wakeup import Wakeup

BUSY_TIMEOUT_MS = 30_000
# Copy the WAL back into the database file once it holds this many pages (SQLite: 1,000). The
# worker's cycle rewrites the same few pages at the end of each index; a checkpoint every
# 10,000 (a WAL of about 20 MB) copies each of them and syncs the file ten times less often:
# two SQLite workers 8,200 -> 9,800 jobs/s, 148 -> 126 us of CPU a job (docs/operations.md).
CHECKPOINT_PAGES = 10_000
# The page size of a file this engine creates (SQLite: 4,096; a file keeps the size it was made
# with). A commit writes each page it changed to the WAL, and a submit changes about eight (the
# jobs table, its indexes, the events table): 17.8 KB a submit instead of 33.6 (decision 0011).
PAGE_SIZE = 2048
# A writer waiting for the write lock tries again every QUICK_PAUSE seconds while it has waited
# less than QUICK_WAIT (another worker holds the lock about 1 ms a turn, so the next try comes
# soon after its commit), then every twice as long up to LONGEST_PAUSE (a checkpoint, or a
# writer of another program holding it long). A failed try costs about 2 us.
QUICK_PAUSE, QUICK_WAIT, LONGEST_PAUSE = 0.00005, 0.005, 0.001
AUTOCOMMIT_HELP = (
    "connection= is in autocommit mode with no open transaction, so the job would not commit "
    "or roll back with your own writes; execute BEGIN on it first"
)


def why_unopened(path: str) -> str:
    """What keeps SQLite from opening `path`, as far as the file system tells, with the fix."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "; the path is a folder: name a file in it, such as jobs.db"
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return "; the file is not readable and writable by this user: fix its permissions"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"; this user cannot write in the folder {folder!r} (permissions, or a read-only "
            "file system), where SQLite keeps its write-ahead log: choose another folder"
        )
    return ""


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
    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__()
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(sql, tuple(params))
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def insert_each(
        self,
        table: str,
        columns: Sequence[str],
        shared: Sequence[Any],
        column: str,
        values: Sequence[Any],
        returning: str = "",
    ) -> list[Row]:
        """INSERT ... SELECT over `json_each` of the values as one JSON array, in their order."""
        tail = f" RETURNING {returning}" if returning else ""
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}, {column})"
            f" SELECT {', '.join('?' * len(shared))}, value FROM json_each(?) ORDER BY key{tail}"
        )
        return self.execute(sql, [*shared, json.dumps(list(values))])


class SqliteDatabase(Database):
    dialect = "sqlite"
    # Without statistics SQLite would sort every PENDING row instead of reading the index.
    claim_hint = " INDEXED BY jobs_claim"
    cancel_poll = 1.0  # cancels also arrive as wake-ups (a socket per listening process)
    path: str

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
        self.busy_timeout_ms = BUSY_TIMEOUT_MS
        self.wakeup = Wakeup(self.path)
        self.anchor: float | None = None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file's; else nothing
            self._use_wal(connection)
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        except sqlite3.Error as error:
            message = f"cannot open SQLite database {self.path!r}: {error}{why_unopened(self.path)}"
            raise DatabaseUnavailable(message) from error
        self._local.connection = connection
        self._local.busy_timeout_ms = self.busy_timeout_ms
        with self._lock:
            self._connections.append(connection)
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch a new file to WAL. Engines opening one file at once can be refused without
        the busy handler (SQLite's way out of a lock deadlock): try again until the timeout."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)  # a retry's pause, not synchronisation

    @contextlib.contextmanager
    def transaction(self, write: bool = True, atomic: bool = True) -> Iterator[Transaction]:
        """BEGIN (IMMEDIATE for writes) ... COMMIT, shielded from the cancel exception so that
        no transaction is ever left open on the thread's connection. A transaction opened
        inside another on the same thread joins it (SQLite cannot nest them). Atomic whatever
        `atomic` says: here one commit costs less than one per statement."""
        with shielded():
            connection = self._connection()
            outer: SqliteTransaction | None = getattr(self._local, "open", None)
            if outer is not None:
                yield outer  # the outer one commits, or rolls back
                return
            transaction = SqliteTransaction(connection)
            self._local.open = transaction
            try:
                if connection.in_transaction:  # left open by a failure nothing could undo
                    connection.execute("ROLLBACK")
                if write:
                    self._begin_write(connection)
                else:
                    self._busy_timeout(connection, self.busy_timeout_ms)
                    connection.execute("BEGIN")
                yield transaction
                connection.execute("COMMIT")
            except BaseException as error:
                if connection.in_transaction:  # unless RAISE(ROLLBACK) or a full disk undid it
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.Error) and unavailable(error):
                    raise DatabaseUnavailable(f"SQLite database {self.path!r}: {error}") from error
                raise
            finally:
                self._local.open = None
            transaction.run_committed_callbacks()

    def _begin_write(self, connection: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, trying again for the write lock as `lock_pause` says until the busy
        timeout. (SQLite's own busy wait sleeps 1, 2, 5, 10 ms and more: another process holds
        the lock about 1 ms a turn, so its waiter lost 1-18 ms; two workers spent 45% of their
        time waiting there.) The connection keeps no busy timeout after: holding the write lock
        of a WAL database, no statement waits."""
        self._busy_timeout(connection, 0)
        began = time.monotonic()
        deadline, pause = began + self.busy_timeout_ms / 1000, QUICK_PAUSE
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)  # a retry's pause, not synchronisation
            pause = lock_pause(pause, time.monotonic() - began)

    def _busy_timeout(self, connection: sqlite3.Connection, milliseconds: int) -> None:
        """Give this thread's connection that busy timeout, unless it has it already."""
        if self._local.busy_timeout_ms != milliseconds:
            connection.execute(f"PRAGMA busy_timeout = {milliseconds}")
            self._local.busy_timeout_ms = milliseconds

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

    def notify(self, channel: str, payload: str = "") -> None:
        self.wakeup.notify(channel, payload)

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: Event) -> None:
        self.wakeup.listen(channel, on_notify, stop)

    def clock_offset(self) -> float:
        """This host's shared timeline: the boot's wall time, fixed in the database by the
        first process of the boot, plus the monotonic clock (which no wall-clock step moves)."""
        if self.anchor is None:
            boot = identity.boot_id() or "unknown"
            with self.transaction() as transaction:
                transaction.execute(
                    "INSERT INTO host_clock (boot_id, anchor) VALUES (?, ?)"
                    " ON CONFLICT (boot_id) DO NOTHING",
                    (boot, time.time() - time.monotonic()),
                )
                select = "SELECT anchor FROM host_clock WHERE boot_id = ?"
                rows = transaction.execute(select, (boot,))
            self.anchor = float(rows[0]["anchor"])
        return self.anchor

    def isolated(self) -> bool:
        """One host, one file: what keeps this process out keeps out every process that could
        take its jobs."""
        return False

    def shorten_waits(self, seconds: float) -> None:
        self.busy_timeout_ms = int(seconds * 1000)

    def missing(self) -> str | None:
        if os.path.exists(self.path):
            return None
        return f"no SQLite database at {os.path.abspath(self.path)!r}"

    def lock_migrations(self, transaction: Transaction) -> None:
        """BEGIN IMMEDIATE already keeps every other writer out."""

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def has_table(self, transaction: Transaction, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(transaction.execute(sql, (name,)))

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
        self._local = threading.local()
        self.wakeup.close()


# Error codes that mean the database cannot be used right now, not that a statement is wrong.
UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_NOMEM,
    }
)


def lock_pause(pause: float, waited: float) -> float:
    """The pause before the next try for the write lock, after `pause` and `waited` seconds in
    all: QUICK_PAUSE through the first QUICK_WAIT, then doubling up to LONGEST_PAUSE."""
    return pause if waited < QUICK_WAIT else min(2 * pause, LONGEST_PAUSE)


def unavailable(error: sqlite3.Error) -> bool:
    """Whether an error means the database is unavailable (locked, full, I/O) for now."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in UNAVAILABLE_CODES
    text = str(error).lower()
    return any(word in text for word in ("locked", "disk", "i/o", "busy", "unable to open"))
