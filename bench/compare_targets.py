"""Issue 14's targets checked against one comparison run, and the notes on how each system runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bench.compare_report import latency, middle, rates, reference

Target = tuple[str, str, str, str]
JOBENGINE_PG, JOBENGINE_SQLITE = "jobengine (PostgreSQL)", "jobengine (SQLite)"
PGQUEUER, HUEY = "PgQueuer (PostgreSQL)", "Huey (SQLite)"


def _median(value: tuple[float, float, float] | None) -> float | None:
    return value[0] if value else None


def _ratio_target(name: str, top: float | None, bottom: float | None, wanted: float) -> Target:
    if top is None or not bottom:
        return (name, "not measured", f">= {wanted:g}x", "-")
    value = top / bottom
    return (name, f"{value:.2f}x", f">= {wanted:g}x", "yes" if value >= wanted else "NO")


def _at_most(name: str, value: float | None, wanted: float, unit: str) -> Target:
    if value is None:
        return (name, "not measured", f"<= {wanted:g}{unit}", "-")
    verdict = "yes" if value <= wanted else "NO"
    return (name, f"{value:.2f}{unit}", f"<= {wanted:g}{unit}", verdict)


def targets(results: dict[str, Any]) -> Iterator[Target]:
    systems = results["systems"]

    def processing(key: str, name: str = "processing") -> float | None:
        return _median(rates(systems.get(key, {}), name))

    def enqueue(key: str, name: str) -> float | None:
        return _median(middle(systems.get(key, {}).get(name, [])))

    def cut(key: str, which: str) -> float | None:
        return _median(latency(systems.get(key, {}), which))

    yield _ratio_target(
        "PostgreSQL processing x PgQueuer (aim 1.5x)",
        processing(JOBENGINE_PG),
        processing(PGQUEUER),
        1.0,
    )
    yield _ratio_target(
        "PostgreSQL processing x bare claim-100 loop on 2 connections",
        processing(JOBENGINE_PG),
        reference(results, "PostgreSQL", "loop 100/txn"),
        0.3,
    )
    yield _ratio_target(
        "SQLite processing x PgQueuer on PostgreSQL",
        processing(JOBENGINE_SQLITE),
        processing(PGQUEUER),
        1.0,
    )
    yield _ratio_target(
        "SQLite processing x Huey", processing(JOBENGINE_SQLITE), processing(HUEY), 3.0
    )
    for key, backend in ((JOBENGINE_PG, "PostgreSQL"), (JOBENGINE_SQLITE, "SQLite")):
        yield _ratio_target(
            f"single submit x bare 1-row insert, {backend}",
            enqueue(key, "single enqueue"),
            reference(results, backend, "insert 1/txn"),
            0.9,
        )
        yield _ratio_target(
            f"submit_many x bare 1,000-row insert, {backend}",
            enqueue(key, "bulk enqueue"),
            reference(results, backend, "insert 1000/txn"),
            0.8,
        )
        yield _ratio_target(
            f"processing with history x empty table, {backend}",
            processing(key, "processing with history"),
            processing(key),
            0.9,
        )
    pgqueuer_p50 = cut(PGQUEUER, "p50")
    jobengine_p50 = cut(JOBENGINE_PG, "p50")
    relative = jobengine_p50 / pgqueuer_p50 if jobengine_p50 and pgqueuer_p50 else None
    yield _at_most("PostgreSQL latency p50 x PgQueuer's p50", relative, 1.0, "x")
    yield _at_most("PostgreSQL latency p99", cut(JOBENGINE_PG, "p99"), 10.0, " ms")
    yield _at_most("SQLite latency p50, other process", cut(JOBENGINE_SQLITE, "p50"), 5.0, " ms")
    yield _at_most("SQLite latency p99, other process", cut(JOBENGINE_SQLITE, "p99"), 20.0, " ms")
    for backend, measured in sorted(results.get("memory", {}).items()):
        growth = measured["last"] - measured["settled"]
        verdict = "yes" if measured["highest"] < 100 and growth < 5 else "NO"
        yield (
            f"worker RSS over {measured['jobs']:,} jobs at concurrency 50, {backend}",
            f"{measured['highest']:.0f} MB at most, {growth:+.1f} MB after 10,000",
            "< 100 MB, no growth",
            verdict,
        )


NOTES = [
    "- Every system: 2 worker processes for processing, 1 idle worker process for latency "
    "(the second one is stopped first), the submitter in another process; the enqueue rates "
    "come from one process with one connection. A job's start is the moment its function "
    "runs (it records `time.time()` minus the time passed as its argument, taken just before "
    "the enqueue call). Processing runs from the commit that queued all the jobs at once to "
    "the last finish the system itself recorded (Huey records none: the poll that first saw "
    "its queue empty, every 20 ms); each poll asks whether any job is left (EXISTS), not how "
    "many, so that it loads alike the systems that keep finished jobs in their table.",
    "- Durability alike: PostgreSQL with its defaults (fsync, synchronous_commit on), every "
    "table logged, except that jobengine's claims committing alone do not wait for the flush "
    "(a lost claim leaves its job PENDING; decision 0010); SQLite in WAL with synchronous=NORMAL.",
    "- PgQueuer 1.6: asyncpg driver, uvloop, async entrypoints, dequeue batches of 50, its "
    "buffered completions; durability `durable` (its default). Keeps two `pgqueuer_log` rows "
    "per finished job (the history is inserted there).",
    "- Procrastinate 3: async psycopg connector, async tasks, concurrency 50 per worker, "
    "LISTEN/NOTIFY; keeps finished jobs and their events (its default).",
    "- Chancy: asyncio executor, async jobs, concurrency 50 per worker, eager polling, NOTIFY "
    "on push, its default plugins, logging at WARNING (its default logger prints a line per "
    "job at INFO); keeps finished jobs for a day (its pruner's default).",
    "- Huey on SQLite: a consumer per worker process with 2 worker threads polling every "
    "10 ms without back-off, no periodic scheduler; no bulk enqueue; keeps no finished jobs "
    "(a no-op's None result is not stored), so it has no history figure.",
    "- jobengine: `jobengine worker` processes with the default settings (poll 1 s, "
    "heartbeats, reaping, schedule ticks, its own log file at INFO, an event row per move); "
    "concurrency 50 on both backends (the default is 10; docs/operations.md: short jobs go "
    "faster with more); submits through "
    "`Engine.submit` and `Engine.submit_many`. On SQLite a submit wakes the workers of other "
    "processes through their wake-up sockets (`jobengine.store.wakeup`); on PostgreSQL "
    "through NOTIFY.",
    "- History: each system's own tables filled the way it keeps finished jobs (jobengine: "
    "jobs plus four event rows each; Procrastinate: jobs plus their events; Chancy: jobs; "
    "PgQueuer: log rows), then the same processing measurement.",
]
