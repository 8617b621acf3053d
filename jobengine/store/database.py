"""The small interface both backends provide: transactions that run SQL written with `?`."""

from __future__ import annotations

import abc
import contextlib
import re
from collections.abc import Callable, Sequence
from threading import Event
from typing import Any
from urllib.parse import urlsplit

from jobengine.errors import ConfigurationError

Row = dict[str, Any]
DEFAULT_URL = "sqlite:///jobengine.db"
URL_HELP = (
    "use sqlite:///relative/path.db, sqlite:////absolute/path.db "
    "or postgresql://user@host:5432/database"
)


class Transaction(abc.ABC):
    """One open transaction; SQL uses `?` placeholders on every backend."""

    dialect: str

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement and return its rows (empty for statements without rows)."""

    @abc.abstractmethod
    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""

    def execute_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Run several statements, each with its own parameters; their rows in order.

        PostgreSQL sends them all in one round trip (pipeline mode); SQLite runs them in turn.
        """
        return [self.execute(sql, params) for sql, params in statements]


class Database(abc.ABC):
    """A backend: SQLite on one host or PostgreSQL shared by many."""

    dialect: str
    url: str

    @abc.abstractmethod
    def transaction(self, write: bool = True) -> contextlib.AbstractContextManager[Transaction]:
        """Open a transaction; `write` ones are serialised where the backend needs it."""

    @abc.abstractmethod
    def foreign_transaction(self, connection: Any) -> Transaction:
        """Wrap a caller's own connection (inside its open transaction) without committing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def notify(self, channel: str, payload: str = "") -> None:  # noqa: B027 - optional
        """Wake listeners in other processes (PostgreSQL); a no-op elsewhere."""

    def listen(  # noqa: B027 - optional for backends
        self, channel: str, on_notify: Callable[[str], None], stop: Event
    ) -> None:
        """Call `on_notify` for each notification until `stop` is set (PostgreSQL only).

        Backends without notifications return at once; polling is always the fallback.
        """

    def placeholders(self, count: int) -> str:
        return ", ".join("?" * count)


def describe(url: str) -> str:
    """The URL with any password hidden, for messages and logs (even when it is malformed)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    if password:
        netloc = parts.netloc.replace(f":{password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_database(url: str, pool_size: int = 10) -> Database:
    """Open the backend a URL names, or raise ConfigurationError naming the fix."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"database URL {url!r} is not a URL; {URL_HELP}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        from jobengine.store.sqlite import SqliteDatabase

        return SqliteDatabase(url)
    if scheme in ("postgresql", "postgres"):
        from jobengine.store.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=pool_size)
    raise ConfigurationError(
        f"database URL scheme {scheme!r} is not supported (in {describe(url)!r}); {URL_HELP}"
    )
