"""The doctor: the engine's health checks, each OK, WARN or FAIL with what was found and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobengine.checks import CHECKS, FAIL, OK, WARN, Check, Look, Options
from jobengine.errors import JobEngineError, SchemaOutdated
from jobengine.redaction import mask_url, scrub
from jobengine.store import Store, migrations, open_database
from jobengine.store.diagnosis import DiagnosisQueries
from jobengine.why import DEAD_AFTER

if TYPE_CHECKING:
    from jobengine.engine import Engine

__all__ = ["DEAD_AFTER", "FAIL", "OK", "WARN", "Check", "Options", "Report", "examine"]
SLOW_ROUND_TRIP = 0.1  # seconds; a query slower than this slows every claim and move
UPGRADE_FIX = "run `jobengine db upgrade` (see its SQL first with `jobengine db sql`)"


@dataclass(frozen=True)
class Report:
    """Every check the doctor made; healthy only when all are OK."""

    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return all(check.level == OK for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every check is OK, 1 when any is WARN or FAIL (for health checks)."""
        return 0 if self.healthy else 1

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": [check.to_dict() for check in self.checks]}

    def text(self) -> str:
        """The report as people read it: one line per check, its fix indented below it."""
        lines = []
        for check in self.checks:
            lines.append(f"{check.level:<4}  {check.name}: {check.message}")
            if check.fix and check.level != OK:
                lines.append(f"      fix: {check.fix}")
        verdict = "all checks OK" if self.healthy else "problems found"
        return "\n".join([*lines, "", verdict])


def examine(engine: Engine, options: Options | None = None) -> Report:
    """Run every check; a check that cannot run (the database went away) is a FAIL itself."""
    options = options or Options()
    store, checks = _database_checks(engine)
    if store is None:
        return Report(checks)
    now = engine.clock.now()
    look = Look(engine, store, options, now, store.workers.overview(now, options.dead_after))
    for name, check in CHECKS:
        try:
            checks.append(check(look))
        except JobEngineError as error:
            fix = "run `jobengine doctor` again"
            checks.append(Check(name, FAIL, f"could not check: {error}", fix))
    return Report(checks)


def _database_checks(engine: Engine) -> tuple[Store | None, list[Check]]:
    """The database's reachability and round trip, and its schema: (the store, the checks)."""
    try:
        store = engine.store
    except SchemaOutdated as error:
        return None, [_reach_only(engine.url), Check("schema", FAIL, str(error), UPGRADE_FIX)]
    except JobEngineError as error:
        message = f"cannot use {mask_url(engine.url)}: {scrub(str(error), [engine.url])}"
        fix = (
            "check the file's path and that it is a jobengine database (--database-url)"
            if engine.url.startswith("sqlite")
            else "check that the database server is running and the URL (--database-url)"
        )
        return None, [Check("database", FAIL, message, fix)]
    reach = _round_trip(store.database.url, DiagnosisQueries(store.database))
    applied, missing = migrations.status(store.database)
    if missing:
        names = ", ".join(f"{m.version} ({m.name})" for m in missing)
        return store, [
            reach,
            Check("schema", FAIL, f"migrations not applied: {names}", UPGRADE_FIX),
        ]
    return store, [reach, Check("schema", OK, f"up to date (version {max(applied, default=0)})")]


def _round_trip(url: str, queries: DiagnosisQueries) -> Check:
    seconds = queries.round_trip()
    message = f"{mask_url(url)} reachable, a round trip takes {seconds * 1000:.2f} ms"
    details = {"round_trip_seconds": seconds}
    if seconds < SLOW_ROUND_TRIP:
        return Check("database", OK, message, details=details)
    message += f" (more than {SLOW_ROUND_TRIP * 1000:.0f} ms)"
    fix = "put the workers near the database, or look at its load (every claim and move waits)"
    return Check("database", WARN, message, fix, details)


def _reach_only(url: str) -> Check:
    database = open_database(url, pool_size=1)
    try:
        return _round_trip(url, DiagnosisQueries(database))
    finally:
        database.close()
