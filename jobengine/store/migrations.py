"""Numbered SQL migrations per dialect: apply them, report them, print them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources

from jobengine.errors import SchemaOutdated
from jobengine.store.database import Database, Transaction


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        return [part.strip() for part in self.sql.split(";\n") if _has_code(part)]


def _has_code(part: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())


def available(dialect: str) -> list[Migration]:
    """Every migration shipped for a dialect, in order."""
    folder = resources.files("jobengine.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda migration: migration.version)


def _applied(transaction: Transaction, database: Database) -> list[int] | None:
    """Applied versions, or None when the database has no jobengine schema at all."""
    if not database.has_table(transaction, "schema_version"):
        return None
    rows = transaction.execute("SELECT version FROM schema_version ORDER BY version")
    return [row["version"] for row in rows]


def _apply(transaction: Transaction, migration: Migration) -> None:
    for statement in migration.statements():
        transaction.execute(statement)
    transaction.execute(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
        (migration.version, migration.name, time.time()),
    )


def upgrade(database: Database) -> list[Migration]:
    """Apply every migration not applied yet; return those applied. A schema newer than this
    jobengine raises SchemaOutdated and is left alone."""
    done: list[Migration] = []
    with database.transaction() as transaction:
        database.lock_migrations(transaction)
        applied = _applied(transaction, database)
        if applied is None:
            transaction.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = []
        problem = newer_than_known(applied, database.dialect)
        if problem:  # its migrations are not ours to apply: refuse, as every command does
            raise SchemaOutdated(problem)
        for migration in available(database.dialect):
            if migration.version not in applied:
                _apply(transaction, migration)
                done.append(migration)
    return done


def newer_than_known(applied: list[int], dialect: str) -> str | None:
    """The refusal of a schema newer than this jobengine understands, or None."""
    latest = available(dialect)[-1].version
    current = max(applied, default=0)
    if current <= latest:
        return None
    return (
        f"the database schema is version {current}, newer than this jobengine "
        f"understands ({latest}); upgrade jobengine"
    )


def applied_versions(database: Database) -> list[int] | None:
    """The versions applied, or None when the database has no jobengine schema at all."""
    with database.transaction(write=False) as transaction:
        return _applied(transaction, database)


def status(database: Database) -> tuple[list[int], list[Migration]]:
    """(applied versions, migrations still to apply); a database not created yet has none
    applied, and asking does not create it."""
    applied = [] if database.missing() else applied_versions(database) or []
    return applied, [m for m in available(database.dialect) if m.version not in applied]


def pending_sql(database: Database, everything: bool = False) -> str:
    """The SQL `upgrade` would run (or the whole schema with `everything`)."""
    migrations = available(database.dialect) if everything else status(database)[1]
    return "\n\n".join(f"-- migration {m.version}: {m.name}\n{m.sql.strip()};" for m in migrations)


def ensure(database: Database) -> None:
    """Create the schema in a new, empty database; refuse an old or newer one."""
    applied = applied_versions(database)
    if applied is None:
        upgrade(database)
        return
    problem = newer_than_known(applied, database.dialect)
    if problem:
        raise SchemaOutdated(problem)
    latest = available(database.dialect)[-1].version
    current = max(applied, default=0)
    missing = [m.version for m in available(database.dialect) if m.version not in applied]
    if missing:
        raise SchemaOutdated(
            f"the database schema is version {current} but this jobengine needs {latest} "
            f"(migrations {', '.join(map(str, missing))} not applied); run `jobengine db upgrade`"
            " (see the SQL first with `jobengine db sql`)"
        )
