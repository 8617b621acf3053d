"""Fresh databases for each measurement (a SQLite file, a PostgreSQL schema) and their contents."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from jobengine.store import NewJob, Store

POSTGRES_SERVER = os.environ.get(
    "JOBENGINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
SQLITE, POSTGRES = "SQLite", "PostgreSQL"
FILL_BATCH = 1_000


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A new SQLite file in a temporary folder, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="jobengine-bench-") as folder:
        yield f"sqlite:///{folder}/bench.db"


@contextmanager
def postgres_database(server: str = POSTGRES_SERVER) -> Iterator[str]:
    """A new, empty schema on the PostgreSQL server, dropped afterwards."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in server else "?"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{server}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_reachable(server: str = POSTGRES_SERVER) -> bool:
    try:
        import psycopg

        psycopg.connect(server, connect_timeout=3).close()
    except Exception:
        return False
    return True


def fresh_database(backend: str) -> AbstractContextManager[str]:
    return sqlite_database() if backend == SQLITE else postgres_database()


def backends() -> list[str]:
    """SQLite always; PostgreSQL when its server answers."""
    if postgres_reachable():
        return [SQLITE, POSTGRES]
    print(f"PostgreSQL at {POSTGRES_SERVER} is unreachable: measuring SQLite only")
    return [SQLITE]


def fill(store: Store, count: int, now: float, job_type: str = "noop") -> None:
    """Insert `count` due PENDING jobs in one transaction (the way a bulk producer would)."""
    new_job = NewJob(job_type, json.dumps({}), "default", 0, now, 1)
    with store.database.transaction() as transaction:
        for start in range(0, count, FILL_BATCH):
            batch = [new_job] * min(FILL_BATCH, count - start)
            store.jobs.insert_many(transaction, batch, now, "bench")
