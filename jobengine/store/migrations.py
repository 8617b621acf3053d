"""Numbered SQL migrations per dialect: apply them, report them, print them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources

from jobengine.errors import SchemaOutdated
from jobengine.store.database import Database, Transaction

MIGRATION_LOCK = 7_364_111  # advisory lock key that serialises schema changes on PostgreSQL


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


def _lock(transaction: Transaction, dialect: str) -> None:
    if dialect == "postgresql":
        transaction.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))


def _applied(transaction: Transaction, dialect: str) -> list[int] | None:
    """Applied versions, or None when the database has no jobengine schema at all."""
    if dialect == "sqlite":
        exists = transaction.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
    else:
        # A catalog query, not to_regclass(): after waiting for the migration lock, to_regclass
        # can still answer from a cache that misses a table another engine just created.
        exists = transaction.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relname = 'schema_version'"
            " AND n.nspname = current_schema()"
        )
    if not exists:
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


def _create_version_table(transaction: Transaction) -> None:
    transaction.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at DOUBLE PRECISION NOT NULL)"
    )


def upgrade(database: Database) -> list[Migration]:
    """Apply every migration not applied yet; return those applied."""
    done: list[Migration] = []
    with database.transaction() as transaction:
        _lock(transaction, database.dialect)
        applied = _applied(transaction, database.dialect)
        if applied is None:
            _create_version_table(transaction)
            applied = []
        for migration in available(database.dialect):
            if migration.version not in applied:
                _apply(transaction, migration)
                done.append(migration)
    return done


def applied_versions(database: Database) -> list[int] | None:
    """The versions applied, or None when the database has no jobengine schema at all."""
    with database.transaction(write=False) as transaction:
        return _applied(transaction, database.dialect)


def status(database: Database) -> tuple[list[int], list[Migration]]:
    """(applied versions, migrations still to apply)."""
    applied = applied_versions(database) or []
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
    latest = available(database.dialect)[-1].version
    current = max(applied, default=0)
    if current > latest:
        raise SchemaOutdated(
            f"the database schema is version {current}, newer than this jobengine "
            f"understands ({latest}); upgrade jobengine"
        )
    missing = [m.version for m in available(database.dialect) if m.version not in applied]
    if missing:
        raise SchemaOutdated(
            f"the database schema is version {current} but this jobengine needs {latest} "
            f"(migrations {', '.join(map(str, missing))} not applied); run `jobengine db upgrade`"
            " (see the SQL first with `jobengine db sql`)"
        )
