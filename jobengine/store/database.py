"""The small interface both backends provide: transactions that run SQL written with `?`."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from threading import Event
from typing import Any

from jobengine.redaction import mask_url

Row = dict[str, Any]
Statement = tuple[str, Sequence[Any]]
PARAMETERS_PER_STATEMENT = 6_000  # well inside SQLite's 32,766 and PostgreSQL's 65,535
DEFAULT_URL = "sqlite:///jobengine.db"
URL_HELP = (
    "use sqlite:///relative/path.db, sqlite:////absolute/path.db "
    "or postgresql://user@host:5432/database"
)


@dataclass(frozen=True)
class Change:
    """A guarded change of one row: `assign` where every column of `guard` holds its value,
    then a row of `values` recorded elsewhere (after the row's id) if it won."""

    assign: dict[str, Any]
    guard: dict[str, Any]
    values: tuple[Any, ...]

    @property
    def shape(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The columns assigned and guarded: changes of one shape can go in one statement."""
        return tuple(self.assign), tuple(self.guard)


def alike_groups(changes: Sequence[Change]) -> list[list[int]]:
    """The positions of the changes that can go in one statement: those of one shape, or each
    alone when a batch changes a row twice."""
    if len({change.guard["id"] for change in changes}) < len(changes):
        return [[index] for index in range(len(changes))]
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
    for index, change in enumerate(changes):
        groups.setdefault(change.shape, []).append(index)
    return list(groups.values())


class Transaction(abc.ABC):
    """One open transaction; SQL uses `?` placeholders on every backend."""

    def __init__(self) -> None:
        self.committed_callbacks: list[Callable[[], None]] = []

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement and return its rows (empty for statements without rows)."""

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], returning: str = ""
    ) -> list[Row]:
        """Insert `rows` (values in the order of `columns`); with `returning` (a column), its
        values in the order of the rows. PostgreSQL sends them in one statement."""
        found: list[Row] = []
        chunk = max(1, PARAMETERS_PER_STATEMENT // max(1, len(columns)))
        marks = f"({', '.join('?' * len(columns))})"
        tail = f" RETURNING {returning}" if returning else ""
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            values = ", ".join([marks] * len(part))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{tail}"
            found += self.execute(sql, [value for row in part for value in row])
        return found

    @abc.abstractmethod
    def insert_each(
        self,
        table: str,
        columns: Sequence[str],
        shared: Sequence[Any],
        column: str,
        values: Sequence[Any],
        returning: str = "",
    ) -> list[Row]:
        """One statement: a row for each of `values` (in `column`), its other `columns` all
        `shared`, sent once for the whole batch; with `returning`, as `insert_rows`."""

    def update_then_insert(
        self, table: str, changes: Sequence[Change], insert: str, columns: Sequence[str]
    ) -> list[bool]:
        """For each change: its guarded UPDATE of `table` and, only if that changed the row,
        a row of `insert` (a table) of (the row's id, *change.values) into `columns`.

        True for each change that won. The changes of one shape go together (`update_alike`);
        a batch that changes a row twice goes one change at a time.
        """
        won = [False] * len(changes)
        for indexes in alike_groups(changes):
            alike = [changes[index] for index in indexes]
            for position in self.update_alike(table, alike, insert, columns):
                won[indexes[position]] = True
        return won

    def update_then_claim(
        self,
        changes: Sequence[Change],
        insert: str,
        columns: Sequence[str],
        claim: Statement,
        note: Statement,
    ) -> tuple[list[bool], list[Row]]:
        """`update_then_insert` of jobs, then `update_then_note` (a claim: `claim`, `note`),
        atomic together; PostgreSQL sends them in one round trip."""
        won = self.update_then_insert("jobs", changes, insert, columns)
        return won, self.update_then_note("jobs", claim, note)

    def update_alike(
        self, table: str, changes: Sequence[Change], insert: str, columns: Sequence[str]
    ) -> list[int]:
        """Changes of distinct rows and of one shape: one UPDATE ... FROM (VALUES ...) for
        them all, one INSERT for the rows of those that won; the positions of those."""
        first = changes[0]
        names = [f"a_{c}" for c in first.assign] + [f"g_{c}" for c in first.guard]
        assign = ", ".join(f"{c} = v.a_{c}" for c in first.assign)
        guard = " AND ".join(f"{table}.{c} = v.g_{c}" for c in first.guard)
        row = f"({', '.join('?' * len(names))})"
        changed: set[Any] = set()
        chunk = max(1, PARAMETERS_PER_STATEMENT // len(names))
        for start in range(0, len(changes), chunk):
            part = changes[start : start + chunk]
            sql = (
                f"WITH v ({', '.join(names)}) AS (VALUES {', '.join([row] * len(part))})"
                f" UPDATE {table} SET {assign} FROM v WHERE {guard} RETURNING id"
            )
            params = [value for c in part for value in (*c.assign.values(), *c.guard.values())]
            changed |= {found["id"] for found in self.execute(sql, params)}
        won = [position for position, change in enumerate(changes) if change.guard["id"] in changed]
        rows = [(changes[position].guard["id"], *changes[position].values) for position in won]
        self.insert_rows(insert, columns, rows)
        return won

    def update_then_note(self, table: str, update: Statement, note: Statement) -> list[Row]:
        """`update` (an UPDATE of `table` ... RETURNING *), then `note` (an INSERT whose SELECT
        reads the updated rows as `moved`); the updated rows. PostgreSQL sends them as one
        statement."""
        rows = self.execute(*update)
        if rows:
            moved = f"SELECT * FROM {table} WHERE id IN ({', '.join('?' * len(rows))})"
            self.execute(f"WITH moved AS ({moved}) {note[0]}", [*(r["id"] for r in rows), *note[1]])
        return rows

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this transaction has committed (never if it rolls back)."""
        self.committed_callbacks.append(callback)

    def run_committed_callbacks(self) -> None:
        callbacks, self.committed_callbacks = self.committed_callbacks, []
        for callback in callbacks:
            callback()


class Database(abc.ABC):
    """A backend: SQLite on one host or PostgreSQL shared by many.

    The members below the abstract methods are what the dialects write differently; the
    table modules use them instead of asking which dialect they run on.
    """

    dialect: str
    url: str
    # Appended to a SELECT that must hold its rows until the transaction ends.
    row_lock = ""
    # Appended to a SELECT that takes rows nobody else holds, skipping the held ones.
    row_lock_skipping = ""
    # Follows the table name in the claim's pick, to make it read the claim index.
    claim_hint = ""
    # Sets, for its transaction, the planner settings a claim runs with (for `pages_read`).
    claim_setting = ""
    # What the claim's pick selects of each row, and how its UPDATE finds those rows again.
    claim_pick = "id, status"
    claim_match = "(id, status) IN (SELECT id, status FROM picked)"
    # How often a worker reads cancel requests when nothing notified it of one.
    cancel_poll = 1.0
    # The file the database lives in, where it lives in one (SQLite), for `doctor`.
    path: str | None = None

    @abc.abstractmethod
    def transaction(
        self, write: bool = True, atomic: bool = True
    ) -> contextlib.AbstractContextManager[Transaction]:
        """Open a transaction; `write` ones are serialised where the backend needs it. Not
        `atomic`: its statements need not commit together, and a backend whose transactions
        cost round trips commits each on its own."""

    def claim_transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """A transaction for a claim (with the moves recorded before it), its statements
        committing on their own as in `transaction(atomic=False)`; a backend whose claim needs
        planner settings opens it where they are already in force."""
        return self.transaction(atomic=False)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one query, read on its own (one round trip on PostgreSQL, not three:
        a statement alone sees one snapshot, in a transaction or not)."""
        with self.transaction(write=False, atomic=False) as transaction:
            return transaction.execute(sql, params)

    def write(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement that writes, committed on its own (one round trip on PostgreSQL)."""
        with self.transaction(atomic=False) as transaction:
            return transaction.execute(sql, params)

    @abc.abstractmethod
    def foreign_transaction(self, connection: Any) -> Transaction:
        """Wrap a caller's own connection (inside its open transaction) without committing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def missing(self) -> str | None:
        """What is missing when the database does not exist yet (so that opening it would
        create it); None when it exists, or when only its server can tell (PostgreSQL)."""
        return None

    @abc.abstractmethod
    def lock_migrations(self, transaction: Transaction) -> None:
        """Hold off other processes migrating the same database until `transaction` ends."""

    @abc.abstractmethod
    def has_table(self, transaction: Transaction, name: str) -> bool:
        """Whether a table of that name exists in the engine's schema."""

    @abc.abstractmethod
    def clock_offset(self) -> float:
        """The clock every process judges by (seconds since the epoch) minus this process's
        time.monotonic() (see clock.DatabaseClock)."""

    @abc.abstractmethod
    def isolated(self) -> bool:
        """Whether this process is cut off from a database that others may still reach (a cut
        link, a dropped route): then its peers may be taking its jobs. Not when the server
        refuses everyone, nor when it answers again."""

    @abc.abstractmethod
    def shorten_waits(self, seconds: float) -> None:
        """From now on give up waiting for the database (a lock, a connection) after `seconds`:
        a worker that is shutting down must not wait for an absent database."""

    def notify(self, channel: str, payload: str = "") -> None:  # noqa: B027 - optional
        """Wake listeners in other processes now; a no-op where the backend has no way."""

    def notify_on_commit(self, transaction: Transaction, channel: str, payload: str) -> None:
        """Wake listeners once `transaction` commits."""
        transaction.after_commit(lambda: self.notify(channel, payload))

    def listen(  # noqa: B027 - optional for backends
        self, channel: str, on_notify: Callable[[str], None], stop: Event
    ) -> None:
        """Call `on_notify` for each notification until `stop` is set.

        Backends without notifications return at once; polling is always the fallback.
        """

    def write_then_insert(
        self,
        write: Statement,
        insert: str,
        columns: Sequence[str],
        values: Sequence[Any],
        notify: tuple[str, str],
    ) -> list[Row]:
        """In a transaction of its own: `write` (a statement that ends RETURNING id), a row of
        `insert` of (id, *values) for each row it returned, and a wake-up of `notify`'s
        (channel, payload) if it returned any; its rows. PostgreSQL makes it one statement."""
        with self.transaction() as transaction:
            rows = transaction.execute(*write)
            transaction.insert_rows(insert, columns, [(row["id"], *values) for row in rows])
            if rows:
                self.notify_on_commit(transaction, *notify)
        return rows

    def placeholders(self, count: int) -> str:
        return ", ".join("?" * count)

    def pages_read(self, query: Statement) -> int | None:
        """The pages `query` (a claim's pick, run with `claim_setting`) reads where deleted
        rows leave index entries behind until a vacuum; None where they go at once (SQLite)."""
        return None

    def vacuum_state(self, table: str) -> str:
        """Whether the server vacuums `table` by itself, in words ("on", "off ...")."""
        return "not needed"

    def server_version(self) -> str:
        """The database software and its version, for the support bundle."""
        return "unknown"


def describe(url: str) -> str:
    """The URL with any password hidden, for messages and logs (even when it is malformed)."""
    return mask_url(url)
