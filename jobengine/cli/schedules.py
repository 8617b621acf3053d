"""`jobengine schedules ...`: list, add, edit, pause, resume, remove, run-now and show schedules."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from jobengine.cli import engine_of
from jobengine.cli.jobs import parse_arguments, parse_duration
from jobengine.cli.output import print_json, print_table, when
from jobengine.cron import MISSED_POLICIES, time_zone
from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.scheduler import recurrence_of
from jobengine.definitions import OVERLAP_POLICIES
from jobengine.store.schedules import Run, Schedule

F = TypeVar("F", bound=Callable[..., Any])


def local(moment: float | None, zone: str) -> str:
    """A moment in the schedule's own time zone: '2026-03-29 03:00 CEST'."""
    if moment is None:
        return "-"
    moment_in_zone = datetime.fromtimestamp(moment, time_zone(zone))
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


def definition_options(function: F) -> F:
    """The options add and edit share."""
    decorators = [
        click.option("--cron", "expression", metavar="EXPR", help="Cron expression, 5 fields."),
        click.option("--every", metavar="DURATION", help="An interval instead: 30s, 10m, 1h."),
        click.option("--tz", metavar="ZONE", help="IANA time zone, e.g. Europe/Berlin."),
        click.option("--arg", "pairs", multiple=True, metavar="KEY=VALUE", help="An argument."),
        click.option("--json", "json_text", metavar="OBJECT", help="Arguments as JSON."),
        click.option("--missed", type=click.Choice(MISSED_POLICIES), help="Missed-run policy."),
        click.option("--missed-window", metavar="DURATION", help="How far back 'all' reaches."),
        click.option("--overlap", type=click.Choice(OVERLAP_POLICIES), help="Overlap policy."),
        click.option("--queue", help="Queue of its jobs. [default: the job type's]"),
        click.option("--priority", type=int, help="Priority of its jobs. [default: job type's]"),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def timing_options(expression: str | None, every: str | None) -> dict[str, Any]:
    if expression is not None and every is not None:
        raise ConfigurationError("give --cron or --every, not both")
    options: dict[str, Any] = {}
    if expression is not None:
        options["expression"] = expression
    if every is not None:
        options["every"] = parse_duration(every)
    return options


def policy_options(**values: Any) -> dict[str, Any]:
    """The options given on the command line (None means: not given)."""
    options = {key: value for key, value in values.items() if value is not None}
    if "missed_window" in options:
        options["missed_window"] = parse_duration(options["missed_window"])
    return options


@click.group("schedules")
def schedules() -> None:
    """Recurring jobs: list, add, edit, pause, resume, remove, run now, show."""


@schedules.command("list")
@click.option("--next", "count", default=1, show_default=True, help="Next fire times to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_schedules(context: click.Context, count: int, as_json: bool) -> None:
    """List every schedule with its reading, next fire times and last run."""
    engine = engine_of(context)
    rows, last_runs = engine.schedules.list(), engine.schedules.last_runs()
    if as_json:
        print_json([summary(engine, schedule, last_runs.get(schedule.name)) for schedule in rows])
        return
    table = []
    for schedule in rows:
        recurrence = recurrence_of(schedule)
        upcoming = engine.schedules.upcoming(schedule, count)
        table.append(
            [
                schedule.name,
                schedule.type,
                recurrence.text,
                recurrence.describe(),
                schedule.timezone,
                state(engine, schedule),
                ", ".join(local(moment, schedule.timezone) for moment in upcoming) or "-",
                describe_run(last_runs.get(schedule.name)),
                schedule.origin,
            ]
        )
    headers = ["name", "type", "schedule", "reading", "zone", "state", "next", "last run"]
    print_table([*headers, "origin"], table)


def summary(engine: Engine, schedule: Schedule, last_run: Run | None) -> dict[str, Any]:
    recurrence = recurrence_of(schedule)
    return {
        **schedule.to_dict(),
        "schedule": recurrence.text,
        "reading": recurrence.describe(),
        "state": state(engine, schedule),
        "next_fire_times": engine.schedules.upcoming(schedule, 5),
        "last_run": last_run.to_dict() if last_run else None,
    }


@schedules.command("add")
@click.argument("name")
@click.argument("type")
@definition_options
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.pass_context
def add(
    context: click.Context,
    /,
    name: str,
    type: str,
    expression: str | None,
    every: str | None,
    pairs: tuple[str, ...],
    json_text: str | None,
    paused: bool,
    **policies: Any,
) -> None:
    """Add schedule NAME firing jobs of TYPE (--cron EXPR or --every DURATION)."""
    timing = timing_options(expression, every)
    if not timing:
        raise ConfigurationError("give --cron EXPR (e.g. '*/5 * * * *') or --every DURATION")
    schedule = engine_of(context).schedules.add(
        name,
        type,
        timing.pop("expression", None),
        arguments=parse_arguments(pairs, json_text),
        enabled=not paused,
        **timing,
        **policy_options(**policies),
    )
    click.echo(f"added schedule {name}: {next_line(schedule)}")


def next_line(schedule: Schedule) -> str:
    recurrence = recurrence_of(schedule)
    upcoming = (
        "paused" if not schedule.enabled else local(schedule.next_fire_time, schedule.timezone)
    )
    return f"{recurrence.text} ({recurrence.describe()}, {schedule.timezone}); next: {upcoming}"


@schedules.command("edit")
@click.argument("name")
@click.option("--type", "type_", help="Another job type.")
@definition_options
@click.pass_context
def edit(
    context: click.Context,
    /,
    name: str,
    type_: str | None,
    expression: str | None,
    every: str | None,
    pairs: tuple[str, ...],
    json_text: str | None,
    **policies: Any,
) -> None:
    """Change schedule NAME; --json replaces its arguments, --arg sets one of them."""
    engine = engine_of(context)
    changes = {**timing_options(expression, every), **policy_options(**policies)}
    if type_:
        changes["type"] = type_
    if pairs or json_text:
        base = parse_arguments((), json_text) if json_text else engine.schedules.get(name).args
        changes["arguments"] = {**base, **parse_arguments(pairs, None)}
    if not changes:
        raise ConfigurationError("nothing to change; see `jobengine schedules edit --help`")
    schedule = engine.schedules.edit(name, **changes)
    click.echo(f"edited schedule {name}: {next_line(schedule)}")


@schedules.command("pause")
@click.argument("name")
@click.pass_context
def pause(context: click.Context, name: str) -> None:
    """Stop firing schedule NAME until it is resumed."""
    engine_of(context).schedules.pause(name)
    click.echo(f"paused schedule {name}")


@schedules.command("resume")
@click.argument("name")
@click.pass_context
def resume(context: click.Context, name: str) -> None:
    """Fire schedule NAME again, from its next fire time on."""
    schedule = engine_of(context).schedules.resume(name)
    click.echo(f"resumed schedule {name}: {next_line(schedule)}")


@schedules.command("remove")
@click.argument("name")
@click.pass_context
def remove(context: click.Context, name: str) -> None:
    """Delete schedule NAME (its past jobs stay)."""
    engine = engine_of(context)
    origin = engine.schedules.get(name).origin
    engine.schedules.remove(name)
    click.echo(f"removed schedule {name}")
    if origin == "code":
        click.echo(
            "note: it is defined in code, so the next worker start creates it again; "
            "delete it from the code, or pause it instead"
        )


@schedules.command("run-now")
@click.argument("name")
@click.pass_context
def run_now(context: click.Context, name: str) -> None:
    """Run schedule NAME once now, outside its timetable; prints the job id."""
    click.echo(engine_of(context).schedules.run_now(name, actor="cli"))


@schedules.command("show")
@click.argument("name")
@click.option("--next", "count", default=10, show_default=True, help="Next fire times to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(context: click.Context, name: str, count: int, as_json: bool) -> None:
    """Show schedule NAME, its next fire times and its latest runs."""
    engine = engine_of(context)
    schedule = engine.schedules.get(name)
    upcoming = engine.schedules.next_fire_times(name, count)
    runs = engine.schedules.runs(name, 10)
    if as_json:
        data = summary(engine, schedule, runs[0] if runs else None)
        data.update(next_fire_times=upcoming, runs=[run.to_dict() for run in runs])
        print_json(data)
        return
    recurrence = recurrence_of(schedule)
    facts = {
        "schedule": f"{recurrence.text} ({recurrence.describe()})",
        "zone": schedule.timezone,
        "state": state(engine, schedule),
        "arguments": json.dumps(schedule.args, sort_keys=True),
        "last fire time": local(schedule.last_fire_time, schedule.timezone),
    }
    for key in ("type", "missed", "missed_window", "overlap", "queue", "priority", "origin"):
        facts[key] = str(getattr(schedule, key)) if getattr(schedule, key) is not None else "-"
    for key, value in facts.items():
        click.echo(f"{key:>16}: {value}")
    click.echo(f"--- next {len(upcoming)} fire times ---")
    print_table(["local", "UTC"], [[local(t, schedule.timezone), when(t)] for t in upcoming])
    click.echo("--- latest runs ---")
    print_table(
        ["job", "status", "fire time", "created", "finished"],
        [
            [r.job_id, r.status, fired(r, schedule), when(r.created_at), when(r.finished_at)]
            for r in runs
        ],
    )


def fired(run: Run, schedule: Schedule) -> str:
    return local(run.fire_time, schedule.timezone) if run.fire_time is not None else "by hand"


COMMANDS: list[click.Command] = [schedules]
