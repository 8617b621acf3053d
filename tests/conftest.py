"""Shared fixtures: a fresh database per test on every backend (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobengine import Engine, ManualClock

POSTGRES_SERVER = os.environ.get(
    "JOBENGINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def postgres_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("JOBENGINE_REQUIRE_POSTGRES"))


def _admin_connection() -> object:
    import psycopg

    try:
        return psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here but unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a new, empty schema of its own; dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    connection = _admin_connection()
    connection.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[attr-defined]
    try:
        yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[attr-defined]
        connection.close()  # type: ignore[attr-defined]


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A URL of a new database of its own, dropped afterwards: for a test whose VACUUM must not
    wait for the snapshots other tests hold in the shared database."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    connection = _admin_connection()
    connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        connection.close()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(database_url: str, clock: ManualClock) -> Iterator[Engine]:
    """An engine on a fresh database with a manual clock and a few job types."""
    engine = Engine(database_url, clock=clock)

    @engine.job
    def add(a: int, b: int) -> int:
        return a + b

    @engine.job(name="greet", queue="mail", priority=5, max_attempts=3, timeout=30)
    def greet(ctx: object, name: str, punctuation: str = "!") -> str:
        return f"hello {name}{punctuation}"

    yield engine
    engine.close()


@pytest.fixture
def reader(database_url: str) -> Iterator[Engine]:
    """A bare engine on the test's database, to check what was written."""
    engine = Engine(database_url)
    yield engine
    engine.close()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of an app module for --app, new for each test, importable from tmp_path."""
    from cli_steps import write_app

    monkeypatch.chdir(tmp_path)
    name = write_app(tmp_path)
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def stopping_engine(database_url: str) -> Iterator[Engine]:
    """An engine with every job type of stopping_jobs (jobs that resist being stopped)."""
    import stopping_jobs

    engine = stopping_jobs.register(Engine(database_url))
    yield engine
    engine.close()
