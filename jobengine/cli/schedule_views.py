"""How `jobengine schedules` shows a schedule: times in its own zone with their ages, its
runs, its table line and its JSON form, and what a damaged row raises instead."""

from __future__ import annotations

import json
from datetime import datetime

import click

from jobengine import representation
from jobengine.cli.output import Data, age, duration, print_table, when, with_former_names
from jobengine.cron import Recurrence, time_zone
from jobengine.engine import Engine
from jobengine.errors import InvalidSchedule
from jobengine.scheduler import recurrence_of
from jobengine.store.schedules import Run, Schedule

# What a schedule row damaged by hand or written by an older version raises when shown.
DAMAGE = (InvalidSchedule, OverflowError, OSError, ValueError)


def local(moment: float | None, zone: str) -> str:
    """A moment in the schedule's own time zone: '2026-03-29 03:00 CEST'."""
    if moment is None:
        return "-"
    try:
        moment_in_zone = datetime.fromtimestamp(moment, time_zone(zone))
    except (OverflowError, OSError, ValueError):
        return "a time out of range (edit or remove this schedule)"
    seconds = ":%S" if moment_in_zone.second else ""
    return moment_in_zone.strftime(f"%Y-%m-%d %H:%M{seconds} %Z")


def state(engine: Engine, schedule: Schedule) -> str:
    if not schedule.enabled:
        return "paused"
    if schedule.next_fire_time is None:
        return "ended"
    return "OVERDUE" if engine.schedules.overdue(schedule) else "active"


def describe_run(run: Run | None) -> str:
    if run is None:
        return "-"
    return f"#{run.job_id} {run.status} {when(run.created_at)}"


REMOVE_HINT = "remove it with `jobengine schedules remove {name}` and add it again"
EDIT_HINT = "change it with `jobengine schedules edit {name}` or remove it"
LIST_HEADERS = [
    "name",
    "type",
    "schedule",
    "reading",
    "zone",
    "state",
    "next",
    "last run",
    "origin",
]


def table_line(engine: Engine, schedule: Schedule, count: int, last_run: Run | None) -> list[str]:
    recurrence = checked_recurrence(schedule)
    upcoming = engine.schedules.upcoming(schedule, count)
    return [
        schedule.name,
        schedule.type,
        recurrence.text,
        recurrence.describe(),
        schedule.timezone,
        state(engine, schedule),
        ", ".join(local(moment, schedule.timezone) for moment in upcoming) or "-",
        describe_run(last_run),
        schedule.origin,
    ]


def as_data(engine: Engine, schedule: Schedule, count: int, last_run: Run | None) -> Data:
    """The API's representation of a schedule (and the names --json printed before it)."""
    checked_recurrence(schedule)
    upcoming = engine.schedules.upcoming(schedule, count)
    return with_former_names(representation.schedule(schedule, upcoming, last_run))


def checked_recurrence(schedule: Schedule) -> Recurrence:
    """The schedule's timing, validated as a new one would be: a row written by hand or by an
    older version (an interval of 10^14 days) raises InvalidSchedule naming what is wrong."""
    return Recurrence.parse(schedule.expression, schedule.every, schedule.timezone)


def print_schedule(
    engine: Engine, schedule: Schedule, upcoming: list[float], runs: list[Run]
) -> None:
    """`schedules show` for people: times in the schedule's zone with their age, durations."""
    now, zone = engine.clock.now(), schedule.timezone
    recurrence = recurrence_of(schedule)
    facts = {
        "schedule": f"{recurrence.text} ({recurrence.describe()})",
        "zone": zone,
        "state": state(engine, schedule),
        "arguments": json.dumps(schedule.args, sort_keys=True),
        "last fire time": local_and_age(schedule.last_fire_time, zone, now),
        "next fire time": local_and_age(schedule.next_fire_time, zone, now),
        "missed window": duration(schedule.missed_window),
        "created": local_and_age(schedule.created_at, zone, now),
        "updated": local_and_age(schedule.updated_at, zone, now),
    }
    for key in ("type", "missed", "overlap", "queue", "priority", "origin"):
        facts[key] = str(getattr(schedule, key)) if getattr(schedule, key) is not None else "-"
    for key, value in facts.items():
        click.echo(f"{key:>16}: {value}")
    click.echo(f"--- next {len(upcoming)} fire times ---")
    print_table(
        ["local", "UTC", "when"],
        [[local(t, zone), when(t), age(t, now)] for t in upcoming],
    )
    print_runs(schedule, runs)


def print_runs(schedule: Schedule, runs: list[Run]) -> None:
    click.echo("--- latest runs ---")
    print_table(
        ["job", "status", "fire time", "created (UTC)", "finished (UTC)", "took"],
        [
            [
                r.job_id,
                r.status,
                fired(r, schedule),
                when(r.created_at),
                when(r.finished_at),
                duration(r.finished_at - r.created_at) if r.finished_at is not None else "-",
            ]
            for r in runs
        ],
    )


def local_and_age(moment: float | None, zone: str, now: float) -> str:
    """'2026-03-29 03:00 CEST (in 2 h)', or '-'."""
    if moment is None:
        return "-"
    return f"{local(moment, zone)} ({age(moment, now)})"


def fired(run: Run, schedule: Schedule) -> str:
    return local(run.fire_time, schedule.timezone) if run.fire_time is not None else "by hand"
