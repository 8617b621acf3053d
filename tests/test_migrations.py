"""Schema migrations: created on first use, reported, printed, applied; outdated ones refused."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner, Result
from job_steps import insert_job

from jobengine import Engine, SchemaOutdated
from jobengine.cli import main
from jobengine.store import Database, Store, migrations, open_database

TABLES = {"jobs", "job_events", "job_logs", "workers", "schedules", "schema_version", "commands"}
OWN_TABLES = {"sqlite": {"host_clock"}, "postgresql": set()}  # the host's shared timeline


def cli(url: str, *arguments: str) -> Result:
    runner = CliRunner(env={"JOBENGINE_DATABASE_URL": None, "JOBENGINE_APP": None})
    return runner.invoke(main, ["--database-url", url, *arguments])


def tables(database: Database) -> set[str]:
    with database.transaction(write=False) as transaction:
        if database.dialect == "sqlite":
            rows = transaction.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = transaction.execute(
                "SELECT table_name AS name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
    return {row["name"] for row in rows} - {"sqlite_sequence"}


def execute(url: str, sql: str) -> None:
    database = open_database(url)
    try:
        with database.transaction() as transaction:
            transaction.execute(sql)
    finally:
        database.close()


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def latest(dialect: str) -> migrations.Migration:
    return migrations.available(dialect)[-1]


def test_both_dialects_ship_the_same_numbered_migrations() -> None:
    sqlite = [(m.version, m.name) for m in migrations.available("sqlite")]
    postgresql = [(m.version, m.name) for m in migrations.available("postgresql")]
    assert sqlite == postgresql
    assert [version for version, _ in sqlite] == list(range(1, len(sqlite) + 1))


def test_a_new_database_gets_the_schema_on_first_use(engine: Engine) -> None:
    engine.submit("add", a=1, b=2)
    database = engine.store.database
    assert tables(database) == TABLES | OWN_TABLES[database.dialect]
    applied, missing = migrations.status(database)
    assert applied == [m.version for m in migrations.available(database.dialect)]
    assert missing == []


def test_db_status_sql_and_upgrade_on_a_new_database(database_url: str) -> None:
    newest = latest(dialect_of(database_url))
    status = cli(database_url, "db", "status")
    assert status.exit_code == 0, status.output
    assert "applied: none" in status.output
    assert f"{newest.version} ({newest.name})" in status.output.split("to apply:")[1]

    sql = cli(database_url, "db", "sql")
    assert sql.exit_code == 0, sql.output
    assert f"-- migration {newest.version}: {newest.name}" in sql.output
    assert "CREATE TABLE jobs" in sql.output
    database = open_database(database_url)
    try:
        assert tables(database) <= {"schema_version"}  # status and sql changed nothing

        upgrade = cli(database_url, "db", "upgrade")
        assert upgrade.exit_code == 0, upgrade.output
        assert f"applied migration {newest.version}: {newest.name}" in upgrade.output
        assert tables(database) == TABLES | OWN_TABLES[database.dialect]
    finally:
        database.close()

    assert "schema is up to date" in cli(database_url, "db", "upgrade").output
    status = cli(database_url, "db", "status")
    versions = [m.version for m in migrations.available(dialect_of(database_url))]
    assert f"applied: {', '.join(map(str, versions))}" in status.output
    assert "to apply: none" in status.output
    assert cli(database_url, "db", "sql").output.strip() == "-- schema is up to date"
    everything = cli(database_url, "db", "sql", "--all").output
    assert "CREATE TABLE jobs" in everything
    assert "CREATE TABLE job_events" in everything


def test_an_outdated_schema_is_refused_and_left_alone(database_url: str) -> None:
    engine = Engine(database_url)
    engine.job(lambda a: a, name="echo")
    job_id = engine.submit("echo", a=1)
    engine.close()
    newest = latest(dialect_of(database_url))
    execute(database_url, f"DELETE FROM schema_version WHERE version = {newest.version}")

    with pytest.raises(SchemaOutdated, match="run `jobengine db upgrade`"):
        engine.submit("echo", a=2)
    result = cli(database_url, "jobs")
    assert result.exit_code != 0
    assert "jobengine db upgrade" in result.output
    assert "Traceback" not in result.output

    execute(
        database_url,
        f"INSERT INTO schema_version VALUES ({newest.version}, '{newest.name}', 0)",
    )
    assert [job.id for job in engine.list()] == [job_id]  # the refusal changed nothing
    engine.close()


def test_a_schema_from_before_any_migration_is_upgraded_by_the_command(database_url: str) -> None:
    execute(
        database_url,
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at DOUBLE PRECISION NOT NULL)",
    )
    engine = Engine(database_url)
    engine.job(lambda a: a, name="echo")
    with pytest.raises(SchemaOutdated, match="run `jobengine db upgrade`"):
        engine.submit("echo", a=1)
    database = open_database(database_url)
    try:
        assert tables(database) == {"schema_version"}
    finally:
        database.close()
    assert "to apply: 1 (initial)" in cli(database_url, "db", "status").output
    upgrade = cli(database_url, "db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    job_id = engine.submit("echo", a=1)
    assert engine.get(job_id).args == {"a": 1}
    engine.close()


def test_a_newer_schema_is_refused(database_url: str) -> None:
    engine = Engine(database_url)
    engine.store  # noqa: B018 - creates the schema
    engine.close()
    execute(database_url, "INSERT INTO schema_version VALUES (999, 'from the future', 0)")
    with pytest.raises(SchemaOutdated, match=r"version 999, newer than .* upgrade jobengine"):
        engine.store  # noqa: B018
    result = cli(database_url, "jobs")
    assert result.exit_code != 0
    assert "upgrade jobengine" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_refuses_and_db_status_warns_of_a_newer_schema(database_url: str) -> None:
    newest = latest(dialect_of(database_url))
    engine = Engine(database_url)
    engine.store  # noqa: B018 - creates the schema
    engine.close()
    future = newest.version + 1
    execute(database_url, f"INSERT INTO schema_version VALUES ({future}, 'from the future', 0)")
    refusal = (
        f"the database schema is version {future}, newer than this jobengine understands "
        f"({newest.version}); upgrade jobengine"
    )
    for command in (["jobs"], ["db", "upgrade"]):
        result = cli(database_url, *command)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.strip().splitlines() == [f"Error: {refusal}"], command
        assert "up to date" not in result.output and "Traceback" not in result.output
    status = cli(database_url, "db", "status")
    assert status.exit_code == 0, status.output
    assert f"warning: {refusal}" in status.stdout.splitlines()
    database = open_database(database_url)
    try:
        assert migrations.applied_versions(database) == [
            *[m.version for m in migrations.available(database.dialect)],
            future,
        ]  # the refused upgrade changed nothing
    finally:
        database.close()
    execute(database_url, f"DELETE FROM schema_version WHERE version = {future}")
    assert "warning" not in cli(database_url, "db", "status").output


@pytest.mark.timeout(60)
def test_engines_opening_a_new_database_at_once_all_succeed(database_url: str) -> None:
    engines = [Engine(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def open_store(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            engine.store  # noqa: B018
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store, args=(engine,)) for engine in engines]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert time.monotonic() - started < 50
    try:
        assert errors == []
        database = engines[0].store.database
        with database.transaction(write=False) as transaction:
            rows = transaction.execute("SELECT version FROM schema_version ORDER BY version")
        assert [row["version"] for row in rows] == [
            m.version for m in migrations.available(database.dialect)
        ]
    finally:
        for engine in engines:
            engine.close()


def test_schema_5_keeps_one_job_per_fire_time_in_an_index_of_schedules_only(
    postgres_url: str,
) -> None:
    """Upgraded from schema 4 (the table constraint held every job): the constraint is gone,
    the unique index holds only the jobs of a schedule, and a fire time still fires once."""
    store = Store.open(postgres_url)
    try:
        with store.database.transaction() as transaction:  # back to schema 4
            transaction.execute("DROP INDEX jobs_schedule_fire_time")
            transaction.execute("ALTER TABLE jobs ADD UNIQUE (schedule, fire_time)")
            transaction.execute("DELETE FROM schema_version WHERE version = 5")
        now = time.time()
        assert insert_job(store, now, schedule="nightly", fire_time=100.0) is not None
        assert [m.version for m in migrations.upgrade(store.database)] == [5]
        with store.database.transaction(write=False) as transaction:
            constraints = transaction.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'jobs'::regclass"
                " AND contype = 'u'"
            )
            [index] = transaction.execute(
                "SELECT pg_get_indexdef('jobs_schedule_fire_time'::regclass) AS definition"
            )
        assert constraints == []
        assert index["definition"].endswith("WHERE (schedule IS NOT NULL)")
        assert insert_job(store, now, schedule="nightly", fire_time=100.0) is None
        assert insert_job(store, now, schedule="nightly", fire_time=200.0) is not None
    finally:
        store.close()
