"""`jobengine schedules ...`: list, add, edit, pause, resume, remove, run-now and show schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobengine import representation
from jobengine.cli import engine_of
from jobengine.cli.output import print_json, print_table
from jobengine.cli.schedule_views import (
    DAMAGE,
    EDIT_HINT,
    LIST_HEADERS,
    REMOVE_HINT,
    as_data,
    local,
    print_schedule,
    table_line,
)
from jobengine.cli.values import PRIORITY, Count, parse_arguments, parse_duration
from jobengine.cron import MISSED_POLICIES
from jobengine.definitions import OVERLAP_POLICIES
from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.scheduler import recurrence_of
from jobengine.store.schedules import Schedule

F = TypeVar("F", bound=Callable[..., Any])
NEXT_COUNT = Count(0, 1000, "counts of fire times")  # worked out one by one: a bounded number


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
        click.option(
            "--priority", type=PRIORITY, help="Priority of its jobs. [default: job type's]"
        ),
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
        options["every"] = parse_duration(every, "--every")
        if options["every"] < 1 or options["every"] != int(options["every"]):
            raise ConfigurationError(
                f"--every {every!r} is not a whole number of seconds, at least 1; "
                "write e.g. 30s, 10m or 1h"
            )
    return options


def policy_options(**values: Any) -> dict[str, Any]:
    """The options given on the command line (None means: not given)."""
    options = {key: value for key, value in values.items() if value is not None}
    if "missed_window" in options:
        options["missed_window"] = parse_duration(options["missed_window"], "--missed-window")
    return options


@click.group("schedules")
def schedules() -> None:
    """Recurring jobs: list, add, edit, pause, resume, remove, run now, show."""


@schedules.command("list")
@click.option(
    "--next",
    "count",
    default=1,
    show_default=True,
    type=NEXT_COUNT,
    help="Next fire times to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_schedules(context: click.Context, count: int, as_json: bool) -> None:
    """List every schedule with its reading, next fire times and last run; a schedule whose
    row cannot be read is listed below the table with what is wrong with it."""
    engine = engine_of(context)
    rows, last_runs = engine.schedules.list(), engine.schedules.last_runs()
    fixes = {
        name: (problem, REMOVE_HINT) for name, problem in engine.schedules.unreadable().items()
    }
    lines: list[Any] = []
    for schedule in rows:
        try:
            last_run = last_runs.get(schedule.name)
            lines.append(
                as_data(engine, schedule, 5, last_run)
                if as_json
                else table_line(engine, schedule, count, last_run)
            )
        except DAMAGE as error:
            fixes[schedule.name] = (f"{type(error).__name__}: {error}", EDIT_HINT)
    if as_json:
        damaged = [{"name": name, "problem": fixes[name][0]} for name in sorted(fixes)]
        print_json(lines + damaged)
        return
    print_table(LIST_HEADERS, lines)
    for name, (problem, hint) in sorted(fixes.items()):
        click.echo(f"schedule {name} cannot be read ({problem}); {hint.format(name=name)}")


def refuse_unreadable(engine: Engine, name: str) -> None:
    """A clear error, not a traceback, for a command on a schedule whose row cannot be read."""
    problem = engine.schedules.unreadable().get(name)
    if problem:
        raise ConfigurationError(
            f"schedule {name} cannot be read ({problem}); remove it with "
            f"`jobengine schedules remove {name}` and add it again"
        )


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
    schedule = engine_of(context, creates=True).schedules.add(
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
    refuse_unreadable(engine, name)
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
    engine = engine_of(context)
    refuse_unreadable(engine, name)
    engine.schedules.pause(name)
    click.echo(f"paused schedule {name}")


@schedules.command("resume")
@click.argument("name")
@click.pass_context
def resume(context: click.Context, name: str) -> None:
    """Fire schedule NAME again, from its next fire time on."""
    engine = engine_of(context)
    refuse_unreadable(engine, name)
    schedule = engine.schedules.resume(name)
    click.echo(f"resumed schedule {name}: {next_line(schedule)}")


@schedules.command("remove")
@click.argument("name")
@click.pass_context
def remove(context: click.Context, name: str) -> None:
    """Delete schedule NAME (its past jobs stay)."""
    engine = engine_of(context)
    unreadable = name in engine.schedules.unreadable()
    origin = None if unreadable else engine.schedules.get(name).origin
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
    engine = engine_of(context)
    refuse_unreadable(engine, name)
    click.echo(engine.schedules.run_now(name, actor="cli"))


@schedules.command("show")
@click.argument("name")
@click.option(
    "--next",
    "count",
    default=10,
    show_default=True,
    type=NEXT_COUNT,
    help="Next fire times to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(context: click.Context, name: str, count: int, as_json: bool) -> None:
    """Show schedule NAME, its next fire times and its latest runs."""
    engine = engine_of(context)
    refuse_unreadable(engine, name)
    schedule = engine.schedules.get(name)
    runs = engine.schedules.runs(name, 10)
    if as_json:
        try:
            data = as_data(engine, schedule, count, runs[0] if runs else None)
        except DAMAGE as error:
            raise ConfigurationError(
                f"schedule {name} cannot be shown ({type(error).__name__}: {error}); change "
                f"it with `jobengine schedules edit {name}` or remove it"
            ) from None
        print_json({**data, "runs": [representation.run(run) for run in runs]})
        return
    upcoming = engine.schedules.next_fire_times(name, count)
    print_schedule(engine, schedule, upcoming, runs)


COMMANDS: list[click.Command] = [schedules]
