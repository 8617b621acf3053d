"""The store: one database (SQLite or PostgreSQL) and the tables the engine keeps in it."""

from __future__ import annotations

from jobengine.store import migrations
from jobengine.store.database import DEFAULT_URL, Database, Transaction, open_database
from jobengine.store.jobs import JobStore, Move, NewJob
from jobengine.store.logs import LogLine, LogStore
from jobengine.store.schedules import ScheduleStore
from jobengine.store.workers import WorkerRecord, WorkerStore


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
        """Open a database; a new, empty one gets the schema, an outdated one is refused."""
        database = open_database(url, pool_size=pool_size)
        try:
            if create:
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
