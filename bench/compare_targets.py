"""Issue 14's targets checked against one comparison run, and the notes on how each system runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bench.compare_report import latency, middle, rates, reference

Target = tuple[str, str, str, str]
JOBENGINE_PG, JOBENGINE_SQLITE = "jobengine (PostgreSQL)", "jobengine (SQLite)"
WAKEUP = "jobengine + wake-up (SQLite)"
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
    for key, label in ((JOBENGINE_SQLITE, "polling"), (WAKEUP, "with the wake-up")):
        yield _at_most(f"SQLite latency p50, other process, {label}", cut(key, "p50"), 5.0, " ms")
        yield _at_most(f"SQLite latency p99, other process, {label}", cut(key, "p99"), 20.0, " ms")
    for backend, measured in sorted(results.get("memory", {}).items()):
        growth = measured["last"] - measured["settled"]
        verdict = "yes" if measured["highest"] < 100 and growth < 5 else "NO"
        yield (
            f"worker RSS over {measured['jobs']:,} jobs at concurrency 50, {backend}",
            f"{measured['highest']:.0f} MB at most, {growth:+.1f} MB after 10,000",
            "< 100 MB, no growth",
            verdict,
        )
