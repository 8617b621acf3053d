"""The PostgreSQL backend: a psycopg 3 connection pool, NOTIFY to wake workers on other hosts."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from threading import Event
from typing import Any

from jobengine.errors import ConfigurationError, DatabaseUnavailable
from jobengine.interrupts import shielded
from jobengine.redaction import scrub
from jobengine.store.database import (
    Database,
    Row,
    Statement,
    Transaction,
    describe,
)
from jobengine.store.postgres_transaction import (
    PostgresTransaction,
    autocommit,
    block,
    roll_back_open_block,
)

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("jobengine.store")
CONNECT_TIMEOUT = 5
# How long a transaction waits for a pooled connection before the database counts as
# unavailable: transactions are short, so a longer wait means the server cannot be reached.
POOL_WAIT = 3.0
# What the server (or the kernel of its host) answers when it serves no one at all.
SERVER_REFUSES = ("connection refused", "shutting down", "starting up", "in recovery mode")
SERVER_DOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
MIGRATION_LOCK = 7_364_111  # advisory lock key that serialises schema changes
# Statistics lag a burst of submits (a fresh queue reads as 1 row): the planner would then sort
# every PENDING row (read through a bitmap scan or the status index: 11 ms at 40,000) instead
# of reading the claim index in its order. A plan with a disabled step costs 10^10, which
# would also make PostgreSQL compile the claim (JIT, 140 ms a claim): no JIT either.
CLAIM_SETTINGS = {"enable_bitmapscan": "off", "enable_sort": "off", "jit": "off"}


def _set_config(local: bool) -> str:
    """The statement that puts CLAIM_SETTINGS in force, for the transaction or the session."""
    flag = "true" if local else "false"
    return "SELECT " + ", ".join(
        f"set_config('{k}', '{v}', {flag})" for k, v in CLAIM_SETTINGS.items()
    )


def _check_url(url: str) -> None:
    """Raise ConfigurationError naming the fix when a PostgreSQL URL cannot be right. (The
    driver's own errors are not chained: they may quote the password.)"""
    if "://" in url and url.split("://", 1)[1].split("?", 1)[0].count("@") > 1:
        raise ConfigurationError(
            f"database URL {describe(url)!r} has more than one '@': write an '@' inside the "
            "user name or password as %40"
        )
    try:
        parameters = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        reason = scrub(str(error).strip(), [url])  # never print a password
        raise ConfigurationError(
            f"database URL {describe(url)!r} is malformed: {reason}; "
            "write it as postgresql://user:password@host:5432/database"
        ) from None
    for port in str(parameters.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"database URL {describe(url)!r}: port {port!r} is not a number from 1 to "
                "65535; write it as postgresql://user:password@host:5432/database"
            )


def cut_off(url: str) -> bool:
    """Whether this host may be cut off from the server at `url` alone. A server that refuses
    (stopped, starting, shutting down) refuses every host, and one that answers is back. A
    server that takes the connection but answers late (starting up on a busy machine) is late
    for every host too; only a host that cannot open a TCP connection to it at all may be the
    one cut off (a unix socket: as a timeout says)."""
    try:
        psycopg.connect(url, connect_timeout=1).close()
    except psycopg.OperationalError as error:
        text = str(error).lower()
        if any(words in text for words in SERVER_REFUSES):
            return False
        return getattr(error, "sqlstate", None) not in SERVER_DOWN_STATES and not _port_opens(url)
    return False


def _port_opens(url: str) -> bool:
    """Whether a TCP connection to one of the URL's hosts opens within a second."""
    parameters = psycopg.conninfo.conninfo_to_dict(url)
    hosts = str(parameters.get("host") or "").split(",")
    ports = str(parameters.get("port") or "5432").split(",")
    if len(ports) == 1:  # one port for every host
        ports *= len(hosts)
    for host, port in zip(hosts, ports, strict=False):
        if not host or host.startswith("/"):
            continue
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except (OSError, ValueError):
            continue
        return True
    return False


class PostgresDatabase(Database):
    dialect = "postgresql"
    row_lock = " FOR UPDATE"
    row_lock_skipping = " FOR UPDATE SKIP LOCKED"
    cancel_poll = 1.0  # cancels also arrive by NOTIFY
    claim_setting = _set_config(local=True)
    # By the picked rows' addresses: a TID scan whatever the statistics say. (Joined on ids,
    # stale statistics, a table vacuumed nearly empty and then filled, planned a nested loop
    # over every row: 580 ms a claim at 80,000 jobs; a status guard here was read through the
    # status index, 35 ms.) The pick locks each row only after checking its latest version is
    # PENDING, and a locked row cannot change until this statement commits: no second check.
    claim_pick = "ctid"
    claim_match = "ctid = ANY(ARRAY(SELECT ctid FROM picked))"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        if psycopg is None:
            raise ConfigurationError(
                "PostgreSQL support is not installed; run: pip install 'jobengine[postgres]'"
            )
        self.url = url
        self.column_types: dict[str, dict[str, str]] = {}
        self.claim_connection: Any = None  # opened by the first claim, CLAIM_SETTINGS in force
        self.claim_lock = threading.Lock()
        _check_url(url)
        self._check_reachable()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            name="jobengine",
            kwargs={"connect_timeout": CONNECT_TIMEOUT},
            timeout=POOL_WAIT,
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
            text = " ".join(line.strip() for line in str(error).splitlines()) or repr(error)
            reason = scrub(text, [self.url])
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {describe(self.url)!r}: {reason}; "
                "check that the server is running and the URL's host, port, user and database"
            ) from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection, shielded from the cancel exception so that no connection is
        ever kept from the pool; an unreachable server raises DatabaseUnavailable."""
        with shielded():
            try:
                with self.pool.connection() as connection:
                    yield connection
            except (psycopg.OperationalError, PoolTimeout) as error:
                raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"PostgreSQL at {describe(self.url)!r}: {scrub(str(error), [self.url])}"
        )

    @contextlib.contextmanager
    def transaction(self, write: bool = True, atomic: bool = True) -> Iterator[Transaction]:
        """BEGIN ... COMMIT; not `atomic`, each statement commits on its own (one round trip
        a statement, where a transaction of one statement takes three)."""
        with self.connection() as connection, block(connection, atomic):
            transaction = PostgresTransaction(connection, self.column_types)
            yield transaction
        transaction.run_committed_callbacks()

    @contextlib.contextmanager
    def claim_transaction(self) -> Iterator[Transaction]:
        """In autocommit on a connection kept for claims, whose session has CLAIM_SETTINGS in
        force: a claim is its one statement, with no BEGIN, setting and COMMIT sent around it
        (0.3 to 0.5 ms sooner a claim on an idle host). The claims of a process take turns on
        it, as the claims of a worker already do (its claiming lock)."""
        with shielded(), self.claim_lock:
            connection = None
            try:
                connection = self._claim_connection()
                transaction = PostgresTransaction(connection, self.column_types)
                yield transaction
            except psycopg.OperationalError as error:
                self._close_claim_connection()
                raise self._unavailable(error) from error
            finally:
                if connection is not None and not connection.closed:
                    roll_back_open_block(connection)
        transaction.run_committed_callbacks()

    def _claim_connection(self) -> Any:
        if self.claim_connection is None or self.claim_connection.closed:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            try:
                connection.execute(_set_config(local=False))
            except psycopg.Error:
                connection.close()
                raise
            self.claim_connection = connection
        return self.claim_connection

    def _close_claim_connection(self) -> None:
        connection, self.claim_connection = self.claim_connection, None
        if connection is not None:
            connection.close()

    def write_then_insert(
        self,
        write: Statement,
        insert: str,
        columns: Sequence[str],
        values: Sequence[Any],
        notify: tuple[str, str],
    ) -> list[Row]:
        """One statement in autocommit, one round trip: the write, the insert reading its
        RETURNING, and the NOTIFY (delivered at the statement's commit)."""
        sql, params = write
        statement = (
            f"WITH written AS ({sql}), recorded AS (INSERT INTO {insert} ({', '.join(columns)})"
            f" SELECT id, {', '.join('?' * len(values))} FROM written),"
            " notified AS (SELECT pg_notify(?, ?)) SELECT written.id FROM written, notified"
        )
        with self.connection() as connection, autocommit(connection):
            return PostgresTransaction(connection, self.column_types).execute(
                statement, [*params, *values, *notify]
            )

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
        return PostgresTransaction(connection, self.column_types)

    def notify(self, channel: str, payload: str = "") -> None:
        with self.transaction() as transaction:
            self.notify_on_commit(transaction, channel, payload)

    def notify_on_commit(self, transaction: Transaction, channel: str, payload: str) -> None:
        """NOTIFY is transactional: sent inside, delivered at the commit, in the same trip."""
        transaction.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def clock_offset(self) -> float:
        """The server's clock, shared by every host, read at the middle of the quickest of
        three round trips."""
        readings = []
        with self.transaction(write=False) as transaction:
            for _ in range(3):
                before = time.monotonic()
                rows = transaction.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp()) AS now")
                after = time.monotonic()
                readings.append((after - before, float(rows[0]["now"]) - (before + after) / 2))
        return min(readings)[1]

    def isolated(self) -> bool:
        return cut_off(self.url)

    def shorten_waits(self, seconds: float) -> None:
        self.pool.timeout = seconds

    def lock_migrations(self, transaction: Transaction) -> None:
        transaction.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def pages_read(self, query: Statement) -> int | None:
        with self.transaction(write=False) as transaction:
            if self.claim_setting:
                transaction.execute(self.claim_setting)
            sql, params = query
            rows = transaction.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = rows[0]["QUERY PLAN"][0]["Plan"]
        return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])

    def vacuum_state(self, table: str) -> str:
        [row] = self.read(
            "SELECT current_setting('autovacuum') AS server, (SELECT reloptions"
            " FROM pg_catalog.pg_class WHERE oid = to_regclass(?)) AS options",
            (table,),
        )
        if row["server"] != "on":
            return "off (the server's setting)"
        if "autovacuum_enabled=false" in (row["options"] or []):
            return f"off for the table {table} (autovacuum_enabled = false)"
        return "on"

    def server_version(self) -> str:
        return str(self.read("SELECT version() AS version")[0]["version"])

    def has_table(self, transaction: Transaction, name: str) -> bool:
        # A catalog query, not to_regclass(): after waiting for the migration lock, to_regclass
        # can still answer from a cache that misses a table another engine just created.
        rows = transaction.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relname = ? AND n.nspname = current_schema()",
            (name,),
        )
        return bool(rows)

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
                reason = scrub(str(error), [self.url])
                log.warning("listen on %s lost (%s); polling until it returns", channel, reason)
                stop.wait(1.0)

    def close(self) -> None:
        self._close_claim_connection()
        self.pool.close(timeout=1.0)  # a connection attempt to an absent server is not awaited
