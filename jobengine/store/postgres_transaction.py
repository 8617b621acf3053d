"""PostgreSQL's transaction: statements with psycopg 3, batches of alike moves as one statement."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from jobengine.store.database import Change, Row, Statement, Transaction, alike_groups

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]


# A transaction's own setting, read as it commits: its commit returns once written to the WAL's
# buffers, flushed by the WAL writer within a few hundred milliseconds or by any later commit
# that waits (decision 0010: only a claim that commits alone, whose loss leaves its jobs PENDING).
UNFLUSHED = "unflushed AS (SELECT set_config('synchronous_commit', 'off', true))"


def _sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _has_rows(cursor: Any) -> bool:
    """Whether the statement returns rows (columns), not only a command status. (Not
    `cursor.description`, which builds an object per column at each use: about 15 us for a
    claim's 26 columns.)"""
    result = cursor.pgresult
    return result is not None and result.nfields > 0


class PostgresTransaction(Transaction):
    def __init__(self, connection: Any, column_types: dict[str, dict[str, str]]) -> None:
        super().__init__()
        self.connection = connection
        self.column_types = column_types  # the database's, shared by its transactions

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_sql(sql), tuple(params))
            return list(cursor.fetchall()) if _has_rows(cursor) else []

    def execute_batch(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Every statement in one round trip (pipeline mode)."""
        cursors = []
        with self.connection.pipeline():
            for sql, params in statements:
                cursor = self.connection.cursor(row_factory=dict_row)
                cursor.execute(_sql(sql), tuple(params))
                cursors.append(cursor)
        results = [list(cursor.fetchall()) if _has_rows(cursor) else [] for cursor in cursors]
        for cursor in cursors:
            cursor.close()
        return results

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], returning: str = ""
    ) -> list[Row]:
        """One INSERT ... SELECT FROM unnest(one array per column), whatever the row count."""
        if not rows:
            return []
        types = self.types(table)
        arrays = ", ".join(f"?::{types[column]}[]" for column in columns)
        tail = f" RETURNING {returning}" if returning else ""
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){tail}"
        return self.execute(sql, [array_text(column) for column in zip(*rows, strict=True)])

    def insert_each(
        self,
        table: str,
        columns: Sequence[str],
        shared: Sequence[Any],
        column: str,
        values: Sequence[Any],
        returning: str = "",
    ) -> list[Row]:
        """INSERT ... SELECT over `unnest` of one array of the values, in their order."""
        types = self.types(table)
        marks = ", ".join(f"?::{types[name]}" for name in columns)
        tail = f" RETURNING {returning}" if returning else ""
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}, {column}) SELECT {marks}, given.value"
            f" FROM unnest(?::{types[column]}[]) WITH ORDINALITY AS given (value, n)"
            f" ORDER BY given.n{tail}"
        )
        return self.execute(sql, [*shared, array_text(values)])

    def update_then_note(self, table: str, update: Statement, note: Statement) -> list[Row]:
        """One statement. Committing alone (autocommit: a claim), it does not wait for the WAL
        flush of its commit (decision 0010); in a block it leaves the block's commit alone."""
        return self.execute(*moved_then_noted(update, note, flushed=not self.connection.autocommit))

    def block(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """`statements` atomic together in one round trip: in a block of their own (BEGIN ...
        COMMIT in the same pipeline) when the connection is in autocommit."""
        if not self.connection.autocommit:
            return self.execute_batch(statements)
        return self.execute_batch([("BEGIN", ()), *statements, ("COMMIT", ())])[1:-1]

    def update_then_claim(
        self,
        changes: Sequence[Change],
        insert: str,
        columns: Sequence[str],
        claim: Statement,
        note: Statement,
    ) -> tuple[list[bool], list[Row]]:
        """One round trip: a statement per group of alike changes, then the claim."""
        groups = alike_groups(changes)
        statements = [
            self.set_statement("jobs", [changes[i] for i in group], insert, columns)
            for group in groups
        ]
        results = self.block([*statements, moved_then_noted(claim, note)])
        won = [False] * len(changes)
        for group, rows in zip(groups, results, strict=False):
            for row in rows:
                won[group[int(row["n"]) - 1]] = True
        return won, results[-1]

    def update_alike(
        self, table: str, changes: Sequence[Change], insert: str, columns: Sequence[str]
    ) -> list[int]:
        """One statement: arrays of the changes' values, the insert reading the UPDATE's
        RETURNING; the positions of the changes that won."""
        sql, params = self.set_statement(table, changes, insert, columns)
        return [int(row["n"]) - 1 for row in self.execute(sql, params)]

    def set_statement(
        self, table: str, changes: Sequence[Change], insert: str, columns: Sequence[str]
    ) -> Statement:
        """The one statement that makes `changes` (alike in shape) and inserts their rows."""
        first, types, recorded = changes[0], self.types(table), self.types(insert)
        names = [f"a_{c}" for c in first.assign] + [f"g_{c}" for c in first.guard]
        names += [f"v_{c}" for c in columns[1:]]
        kinds = [types[c] for c in (*first.assign, *first.guard)]
        kinds += [recorded[c] for c in columns[1:]]
        arrays = [
            [*change.assign.values(), *change.guard.values(), *change.values] for change in changes
        ]
        assign = ", ".join(f"{c} = v.a_{c}" for c in first.assign)
        guard = " AND ".join(f"{table}.{c} = v.g_{c}" for c in first.guard)
        # The ids again as one array and, when every change guards the same status, that status
        # as a constant: whatever the statistics say (a table believed empty), the rows are
        # found by their keys or among the jobs in that status through an index (a batch's
        # status is RUNNING: a few rows per worker), never by reading every row of the table.
        keys = [array_text([change.guard["id"] for change in changes])]
        guard += f" AND {table}.id = ANY(?::{types['id']}[])"
        if "status" in first.guard and all(
            c.guard["status"] == first.guard["status"] for c in changes
        ):
            keys.append(first.guard["status"])
            guard += f" AND {table}.status = ?::{types['status']}"
        sql = (
            f"WITH v AS (SELECT * FROM unnest({', '.join(f'?::{k}[]' for k in kinds)})"
            f" WITH ORDINALITY AS v({', '.join(names)}, n)),"
            f" moved AS (UPDATE {table} SET {assign} FROM v WHERE {guard}"
            f" RETURNING {table}.id, v.n),"
            f" noted AS (INSERT INTO {insert} ({', '.join(columns)}) SELECT moved.id,"
            f" {', '.join(f'v.v_{c}' for c in columns[1:])} FROM moved JOIN v ON v.n = moved.n)"
            " SELECT n FROM moved"
        )
        return sql, [*(array_text(column) for column in zip(*arrays, strict=True)), *keys]

    def types(self, table: str) -> dict[str, str]:
        """The columns of `table` and their types, read once per database."""
        known = self.column_types.get(table)
        if known is None:
            rows = self.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = ? AND table_schema = current_schema()",
                (table,),
            )
            known = {str(row["column_name"]): str(row["data_type"]) for row in rows}
            self.column_types[table] = known
        return known


@contextlib.contextmanager
def autocommit(connection: Any) -> Iterator[None]:
    """The pooled `connection` in autocommit mode, then left as the pool expects it (idle, not
    in autocommit) whatever a statement did."""
    connection.autocommit = True
    try:
        yield
    finally:
        if not connection.closed:
            roll_back_open_block(connection)
            connection.autocommit = False


def roll_back_open_block(connection: Any) -> None:
    """Roll back a block that a failed statement left open on an autocommit `connection`."""
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            connection.execute("ROLLBACK")


def block(connection: Any, atomic: bool) -> contextlib.AbstractContextManager[Any]:
    """BEGIN ... COMMIT around what the block runs, or (not `atomic`) autocommit."""
    return connection.transaction() if atomic else autocommit(connection)


def moved_then_noted(update: Statement, note: Statement, flushed: bool = True) -> Statement:
    """One statement: `update` (... RETURNING *), then `note` reading its rows as `moved`; not
    `flushed`: its transaction commits without waiting for the WAL to reach the disk."""
    tail = (
        " SELECT * FROM moved" if flushed else f", {UNFLUSHED} SELECT moved.* FROM moved, unflushed"
    )
    return f"WITH moved AS ({update[0]}), noted AS ({note[0]}){tail}", [*update[1], *note[1]]


NUMBERS = {int, float}  # whose repr PostgreSQL reads as it is
NONE = {type(None)}


def array_text(values: Sequence[Any]) -> str:
    """`values` as the text of a PostgreSQL array, which the statement's `?::type[]` reads:
    a tenth of the cost of adapting the list element by element. A column of one kind (ids,
    times, arguments, nothing) skips the test of each element's kind: half the cost again."""
    kinds = set(map(type, values))
    if kinds <= NUMBERS:
        return "{" + ",".join(map(repr, values)) + "}"
    if kinds == NONE:  # an outcome's result or errors, often
        return "{" + ",".join(["NULL"] * len(values)) + "}"
    if kinds == {str}:
        escaped = [text.replace("\\", "\\\\").replace('"', '\\"') for text in values]
        return '{"' + '","'.join(escaped) + '"}'
    return "{" + ",".join([_element_text(value) for value in values]) + "}"


def _element_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no array text for a {type(value).__name__} value")
