"""The doctor: the engine's health checks, each OK, WARN or FAIL with what was found and the fix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobengine.checks import (
    DEAD_AFTER,
    FAIL,
    MOST_LISTED,
    OK,
    RECENT_DEATH,
    SLOW_ROUND_TRIP,
    WAIT_WARNING,
    WARN,
    Check,
    Look,
    Options,
    clocks,
    file_system,
    schedules,
    stuck,
)
from jobengine.errors import JobEngineError, SchemaOutdated
from jobengine.redaction import mask_url, scrub
from jobengine.store import Store, WorkerRecord, migrations, open_database
from jobengine.store.diagnosis import DiagnosisQueries
from jobengine.store.listing import JobQueries
from jobengine.store.workers import DEAD, DRAINING, LIVE, WorkerOverview
from jobengine.wording import ago, duration, plural, worker_label

if TYPE_CHECKING:
    from jobengine.engine import Engine

__all__ = ["DEAD_AFTER", "FAIL", "OK", "WARN", "Check", "Options", "Report", "examine"]


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
            checks.append(
                Check(name, FAIL, f"could not check: {error}", "run `jobengine doctor` again")
            )
    return Report(checks)


# -- the database ------------------------------------------------------------------------------


def _database_checks(engine: Engine) -> tuple[Store | None, list[Check]]:
    """The database's reachability and round trip, and its schema: (the store, the checks)."""
    try:
        store = engine.store
    except SchemaOutdated as error:
        return None, [_reach_only(engine.url), Check("schema", FAIL, str(error), _upgrade_fix())]
    except JobEngineError as error:
        message = f"cannot use {mask_url(engine.url)}: {scrub(str(error), [engine.url])}"
        fix = "check that the database server is running and the URL (--database-url)"
        return None, [Check("database", FAIL, message, fix)]
    return store, [
        _round_trip(store.database.url, DiagnosisQueries(store.database)),
        _schema(store),
    ]


def _round_trip(url: str, queries: DiagnosisQueries) -> Check:
    seconds = queries.round_trip()
    message = f"{mask_url(url)} reachable, a round trip takes {seconds * 1000:.2f} ms"
    if seconds < SLOW_ROUND_TRIP:
        return Check("database", OK, message, details={"round_trip_seconds": seconds})
    return Check(
        "database",
        WARN,
        message + f" (more than {SLOW_ROUND_TRIP * 1000:.0f} ms)",
        "put the workers near the database, or look at its load (every claim and move waits)",
        {"round_trip_seconds": seconds},
    )


def _reach_only(url: str) -> Check:
    database = open_database(url, pool_size=1)
    try:
        return _round_trip(url, DiagnosisQueries(database))
    finally:
        database.close()


def _upgrade_fix() -> str:
    return "run `jobengine db upgrade` (see its SQL first with `jobengine db sql`)"


def _schema(store: Store) -> Check:
    applied, missing = migrations.status(store.database)
    if missing:
        names = ", ".join(f"{m.version} ({m.name})" for m in missing)
        return Check("schema", FAIL, f"migrations not applied: {names}", _upgrade_fix())
    return Check("schema", OK, f"up to date (version {max(applied, default=0)})")


# -- workers and what they serve ---------------------------------------------------------------


def _workers(look: Look) -> Check:
    alive = [w for w in look.workers if w.state == "alive"]
    draining = [w for w in look.workers if w.state == DRAINING]
    silent = [w for w in look.workers if w.state == DEAD and w.record.state in LIVE]
    recent = [w for w in look.workers if w.state == DEAD and _died_recently(w.record, look.now)]
    counts = f"{len(alive)} alive, {len(draining)} draining, {len(silent) + len(recent)} dead"
    details = {
        "alive": _names(alive),
        "draining": _names(draining),
        "dead": _names(silent + recent),
    }
    if not alive and not draining:
        return Check(
            "workers",
            FAIL,
            f"no live worker ({counts}): no job runs and no schedule fires",
            "start one with `jobengine worker` (or `jobengine run` for several)",
            details,
        )
    if silent or recent:
        return Check(
            "workers", WARN, f"{counts}: {_deaths(silent, recent, look)}", _DEATH_FIX, details
        )
    return Check("workers", OK, counts, details=details)


_DEATH_FIX = (
    "read the dead worker's own log (its --log-file, in the support bundle) for why it stopped;"
    " its jobs are recovered by the reaper of any live worker"
)


def _died_recently(record: WorkerRecord, now: float) -> bool:
    return record.state == DEAD and (record.stopped_at or 0.0) >= now - RECENT_DEATH


def _deaths(silent: list[WorkerOverview], recent: list[WorkerOverview], look: Look) -> str:
    now = look.now
    parts = [
        f"worker {worker_label(w.record.id)} stopped heartbeating {ago(w.record.heartbeat, now)}"
        " and is not declared dead yet"
        for w in silent[:MOST_LISTED]
    ]
    parts += [
        f"worker {worker_label(w.record.id)} was declared dead {ago(w.record.stopped_at or 0, now)}"
        for w in recent[:MOST_LISTED]
    ]
    return "; ".join(parts)


def _names(workers: Sequence[WorkerOverview]) -> list[str]:
    return [worker.record.id for worker in workers]


def _queues(look: Look) -> Check:
    groups = look.due
    due: dict[str, int] = {}
    for group in groups:
        due[group.queue] = due.get(group.queue, 0) + group.count
    unserved = {queue: count for queue, count in due.items() if not look.claiming(queue)}
    if not unserved:
        return Check(
            "queues", OK, "every queue with due jobs has a live worker" if due else "no job is due"
        )
    names = ", ".join(
        f"`{queue}` ({plural(count, 'due job')})" for queue, count in unserved.items()
    )
    first = next(iter(unserved))
    return Check(
        "queues",
        FAIL,
        f"no live worker serves {names}",
        f"start a worker for them, e.g. `jobengine worker --queues {first}` (no --queues: all)",
        {"unserved": unserved},
    )


def _job_types(look: Look) -> Check:
    waiting = {group.type for group in look.due}
    scheduled = {schedule.type for schedule in look.store.schedules.all() if schedule.enabled}
    served = {name for worker in look.live for name in worker.record.types}
    missing = sorted((waiting | scheduled) - served)
    if not missing:
        return Check("job types", OK, "every waiting or scheduled job type has a live worker")
    return Check(
        "job types",
        WARN,
        f"no live worker has registered {', '.join(f'`{name}`' for name in missing)}"
        " (jobs or schedules of these types wait for ever)",
        "start a worker whose --app registers them, or cancel those jobs",
        {"types": missing},
    )


def _waiting(look: Look) -> Check:
    oldest = JobQueries(look.store.database).oldest_due(look.now)
    if oldest is None:
        return Check("waiting", OK, "no job is waiting past its time")
    waited = max(0.0, look.now - oldest.run_at)
    message = f"the oldest due job, {look.job(oldest)} ({oldest.type}, queue `{oldest.queue}`),"
    message += f" has waited {duration(waited)}"
    details = {"job_id": oldest.id, "waited_seconds": round(waited, 3)}
    if waited < WAIT_WARNING:
        return Check("waiting", OK, message, details=details)
    return Check("waiting", WARN, message, f"`jobengine why {oldest.id}` says why", details)


CHECKS: list[tuple[str, Callable[[Look], Check]]] = [
    ("workers", _workers),
    ("queues", _queues),
    ("waiting", _waiting),
    ("stuck jobs", stuck),
    ("schedules", schedules),
    ("job types", _job_types),
    ("clocks", clocks),
    ("file system", file_system),
]
