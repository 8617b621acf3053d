"""Numbered SQL migrations per dialect: apply them, report them, print them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources

from jobengine.errors import DatabaseUnavailable, SchemaOutdated
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
        exists = transaction.execute("SELECT 1 WHERE to_regclass('schema_version') IS NOT NULL")
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


def status(database: Database) -> tuple[list[int], list[Migration]]:
    """(applied versions, migrations still to apply)."""
    with database.transaction(write=False) as transaction:
        applied = _applied(transaction, database.dialect) or []
    return applied, [m for m in available(database.dialect) if m.version not in applied]


def pending_sql(database: Database, everything: bool = False) -> str:
    """The SQL `upgrade` would run (or the whole schema with `everything`)."""
    migrations = available(database.dialect) if everything else status(database)[1]
    return "\n\n".join(f"-- migration {m.version}: {m.name}\n{m.sql.strip()};" for m in migrations)


def ensure(database: Database) -> None:
    """Create the schema in a new, empty database; refuse an old or newer one."""
    try:
        applied, missing = status(database)
    except DatabaseUnavailable:
        raise
    if not applied:
        upgrade(database)
        return
    latest = available(database.dialect)[-1].version
    if max(applied) > latest:
        raise SchemaOutdated(
            f"the database schema is version {max(applied)}, newer than this jobengine "
            f"understands ({latest}); upgrade jobengine"
        )
    if missing:
        raise SchemaOutdated(
            f"the database schema is version {max(applied)} but this jobengine needs {latest}; "
            "run `jobengine db upgrade` (see the SQL first with `jobengine db sql`)"
        )
