"""`jobengine db`: apply, report and print the schema migrations."""

from __future__ import annotations

import click

from jobengine.cli import engine_of
from jobengine.redaction import mask_url
from jobengine.store import Database, migrations, open_database


@click.group("db")
def db() -> None:
    """The database schema: upgrade it, see its status, print its SQL."""


def _database(context: click.Context) -> Database:
    return open_database(engine_of(context).url)


@db.command()
@click.pass_context
def upgrade(context: click.Context) -> None:
    """Apply every migration not applied yet."""
    database = _database(context)
    try:
        done = migrations.upgrade(database)
    finally:
        database.close()
    if not done:
        click.echo("schema is up to date")
    for migration in done:
        click.echo(f"applied migration {migration.version}: {migration.name}")


@db.command()
@click.pass_context
def status(context: click.Context) -> None:
    """Show the applied migrations, those still to apply, and a schema newer than this one."""
    database = _database(context)
    try:
        applied, missing = migrations.status(database)
    finally:
        database.close()
    absent = " (not created yet: `jobengine db upgrade` creates it)" if database.missing() else ""
    click.echo(f"database: {mask_url(engine_of(context).url)}{absent}")
    click.echo(f"applied: {', '.join(map(str, applied)) or 'none'}")
    click.echo(f"to apply: {', '.join(f'{m.version} ({m.name})' for m in missing) or 'none'}")
    problem = migrations.newer_than_known(applied, database.dialect)
    if problem:
        click.echo(f"warning: {problem}")


@db.command()
@click.option("--all", "everything", is_flag=True, help="The whole schema, not only what is left.")
@click.pass_context
def sql(context: click.Context, everything: bool) -> None:
    """Print the SQL that `db upgrade` would run."""
    database = _database(context)
    try:
        click.echo(migrations.pending_sql(database, everything) or "-- schema is up to date")
    finally:
        database.close()


COMMANDS = [db]
