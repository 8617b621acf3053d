"""The store: one database (SQLite or PostgreSQL) and the tables the engine keeps in it."""

from __future__ import annotations

from jobengine.errors import ConfigurationError
from jobengine.model import LogLine, Move, NewJob
from jobengine.store import migrations
from jobengine.store.database import DEFAULT_URL, URL_HELP, Database, Transaction, describe
from jobengine.store.jobs import JobStore
from jobengine.store.logs import LogStore
from jobengine.store.schedules import ScheduleStore
from jobengine.store.workers import WorkerRecord, WorkerStore


def open_database(url: str, pool_size: int = 10) -> Database:
    """Open the backend a URL names, or raise ConfigurationError naming the fix."""
    if not isinstance(url, str) or "://" not in url:
        shown = describe(url) if isinstance(url, str) else repr(url)
        raise ConfigurationError(f"database URL {shown!r} is not a URL; {URL_HELP}")
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


class Store:
    """The tables of one database, each behind its own small class."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.jobs = JobStore(database)
        self.logs = LogStore(database)
        self.workers = WorkerStore(database)
        self.schedules = ScheduleStore(database)

    @classmethod
    def open(cls, url: str, pool_size: int = 10, create: bool = True) -> Store:
        """Open a database; a new, empty one gets the schema, an outdated one is refused.
        Without `create`, a database that does not exist yet is refused, not created."""
        database = open_database(url, pool_size=pool_size)
        try:
            problem = None if create else database.missing()
            if problem:
                raise ConfigurationError(
                    f"{problem}: check the path in --database-url (or JOBENGINE_DATABASE_URL);"
                    " this command uses an existing one and creates none (`jobengine db upgrade`, a"
                    " first `jobengine submit` or `jobengine worker` creates one)"
                )
            migrations.ensure(database)
        except BaseException:
            database.close()
            raise
        return cls(database)

    def close(self) -> None:
        self.database.close()


__all__ = [
    "DEFAULT_URL",
    "Database",
    "JobStore",
    "LogLine",
    "LogStore",
    "Move",
    "NewJob",
    "ScheduleStore",
    "Store",
    "Transaction",
    "WorkerRecord",
    "WorkerStore",
    "open_database",
]
