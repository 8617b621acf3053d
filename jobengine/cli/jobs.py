"""`jobengine submit|jobs|show|cancel|rerun|run-now|log`: thin calls into the engine's API."""

from __future__ import annotations

import json
import os
import signal
from threading import Event
from typing import TextIO

import click

from jobengine import representation
from jobengine.cli import engine_of
from jobengine.cli.diagnosis import job_url_builder
from jobengine.cli.output import (
    duration,
    moment_and_age,
    print_json,
    print_table,
    when,
    with_former_names,
)
from jobengine.cli.values import (
    JOB_ID,
    PRIORITY,
    WholeNumber,
    parse_arguments,
    parse_at,
    parse_duration,
)
from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.interrupts import SignalEvent
from jobengine.limits import WHOLE_MAX
from jobengine.model import Job

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT)
TIME_FIELDS = ("run_at", "heartbeat", "fire_time")  # and every field named ..._at
JSON_FIELDS = ("args", "result")
TEXT_FIELDS = ("output", "errors")
MOST_LISTED = 10_000  # jobs one `jobengine jobs` prints; --after pages through the rest


@click.command()
@click.argument("type")
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An argument; VALUE is read as JSON when it parses, else as text.",
)
@click.option("--json", "json_text", metavar="OBJECT", help="Arguments as one JSON object.")
@click.option(
    "--in", "delay", metavar="DURATION", help="Run after a delay: 30s, 10m, 1h30m. [default: now]"
)
@click.option(
    "--at",
    "at",
    metavar="ISO-TIME",
    help="Run at an ISO time; no offset means local time. [default: now]",
)
@click.option("--priority", type=PRIORITY, help="Higher runs first. [default: the job type's]")
@click.option("--queue", help="Queue to put it in. [default: the job type's]")
@click.option(
    "--timeout", metavar="DURATION", help="Stop the job after this long. [default: the job type's]"
)
@click.pass_context
def submit(
    context: click.Context,
    type: str,
    pairs: tuple[str, ...],
    json_text: str | None,
    delay: str | None,
    at: str | None,
    priority: int | None,
    queue: str | None,
    timeout: str | None,
) -> None:
    """Submit a job of TYPE and print its id."""
    if delay and at:
        raise ConfigurationError("give --in or --at, not both")
    engine = engine_of(context, creates=True)
    job_id = engine.submit(
        type,
        arguments=parse_arguments(pairs, json_text),
        delay=parse_duration(delay, "--in") if delay else None,
        run_at=parse_at(at) if at else None,
        priority=priority,
        queue=queue,
        timeout=parse_duration(timeout, "--timeout") if timeout else None,
        actor="cli",
    )
    click.echo(job_id)


@click.command("jobs")
@click.option("--status", "statuses", multiple=True, help="Only jobs in this status (repeatable).")
@click.option("--type", "type_", help="Only jobs of this type.")
@click.option("--queue", help="Only jobs in this queue.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=WholeNumber(0, MOST_LISTED, "limits"),
    help=f"How many jobs at most, 0 to {MOST_LISTED}; page on with --after.",
)
@click.option(
    "--after",
    type=WholeNumber(0, WHOLE_MAX, "job ids"),
    help="Continue after this job id (the next page).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_jobs(
    context: click.Context,
    statuses: tuple[str, ...],
    type_: str | None,
    queue: str | None,
    limit: int,
    after: int | None,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    jobs = engine_of(context).list(list(statuses), type_, queue, limit, after)
    if as_json:
        print_json([with_former_names(representation.job(job)) for job in jobs])
        return
    print_table(
        ["id", "type", "queue", "status", "attempt", "created", "worker"],
        [
            [
                j.id,
                j.type,
                j.queue,
                j.status,
                f"{j.attempt}/{j.max_attempts}",
                when(j.created_at),
                j.worker or "-",
            ]
            for j in jobs
        ],
    )


@click.command()
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(context: click.Context, job_id: int, as_json: bool) -> None:
    """Show a job and the timeline of its events."""
    engine = engine_of(context)
    job, events = engine.get(job_id), engine.events(job_id)
    page = job_url_builder()
    if as_json:
        data = with_former_names(representation.job(job))
        if page is not None:
            data["url"] = page(job.id)
        print_json({**data, "events": [representation.event(event) for event in events]})
        return
    for name, value in job_facts(job, engine.clock.now()):
        click.echo(f"{name:>20}: {value}")
    if page is not None:
        click.echo(f"{'page':>20}: {page(job.id)}")
    for name in TEXT_FIELDS:
        if getattr(job, name):
            click.echo(f"--- {name} ---\n{getattr(job, name)}")
    click.echo("--- events ---")
    print_table(
        ["time (UTC)", "verb", "from", "to", "attempt", "actor", "reason"],
        [
            [
                when(e.at),
                e.verb,
                e.from_status or "-",
                e.to_status,
                e.attempt,
                e.actor,
                e.reason or "",
            ]
            for e in events
        ],
    )


def job_facts(job: Job, now: float) -> list[tuple[str, str]]:
    """The lines of `show`: times as dates with their age, durations as durations."""
    facts: list[tuple[str, str]] = []
    for name, value in job.to_dict().items():
        if value is None or name in TEXT_FIELDS or name == "max_attempts":
            continue
        if name in TIME_FIELDS or name.endswith("_at"):
            facts.append((name, moment_and_age(value, now)))
        elif name in JSON_FIELDS:
            facts.append((name, json.dumps(value)))
        elif name == "timeout":
            facts.append((name, duration(value)))
        elif name == "attempt":
            facts.append((name, f"{value} of {job.max_attempts}"))
        elif name == "progress":
            facts.append((name, f"{value:.0%}"))
        else:
            facts.append((name, str(value)))
    if job.started_at is not None:
        if job.started_at >= job.run_at:
            facts.append(("waited", duration(job.started_at - job.run_at)))
        ended = job.finished_at if job.finished_at is not None else now
        facts.append(
            ("ran for" if job.finished_at else "running for", duration(ended - job.started_at))
        )
    return facts


@click.command()
@click.argument("job_id", type=JOB_ID)
@click.option("--reason", help="Why, for the job's events.")
@click.pass_context
def cancel(context: click.Context, job_id: int, reason: str | None) -> None:
    """Cancel a job: waiting jobs end at once, running ones are stopped by their worker."""
    status = engine_of(context).cancel(job_id, actor="cli", reason=reason)
    click.echo(f"job {job_id}: {status}")


@click.command()
@click.argument("job_id", type=JOB_ID)
@click.pass_context
def rerun(context: click.Context, job_id: int) -> None:
    """Run an ended job again as a new job; prints the new id."""
    click.echo(engine_of(context).rerun(job_id, actor="cli"))


@click.command("run-now")
@click.argument("job_id", type=JOB_ID)
@click.pass_context
def run_now(context: click.Context, job_id: int) -> None:
    """Make a PENDING job that waits for a later time (its run_at, or a retry's wait) due now."""
    engine = engine_of(context)
    before, now = engine.get(job_id), engine.clock.now()
    if not engine.run_now(job_id, actor="cli"):
        click.echo(f"job {job_id} was already due; nothing changed")
    elif before.run_at <= now:  # its run_at held no time (a row written by hand)
        click.echo(f"job {job_id}: due now (its run_at held no time); the next free worker runs it")
    else:
        was = moment_and_age(before.run_at, now)
        click.echo(f"job {job_id}: due now (it was due {was}); the next free worker runs it")


@click.command("log")
@click.argument("job_id", type=JOB_ID)
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing until the job ends (Ctrl-C stops)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the log to this file.",
)
@click.pass_context
def log(context: click.Context, job_id: int, follow: bool, output: str | None) -> None:
    """Print a job's own log."""
    engine = engine_of(context)
    engine.get(job_id)
    target = open_output(output) if output and output != "-" else None  # -o - is stdout
    # Ctrl-C is how --follow is meant to stop: noted, and acted on between two reads (raised
    # inside a query, the interrupt could leave a failed rollback, an error, in its place)
    stopped = SignalEvent()
    previous = signal.signal(signal.SIGINT, lambda number, frame: stopped.set())
    try:
        print_log(engine, job_id, follow, target, stopped)
    finally:
        signal.signal(signal.SIGINT, previous)
        if target is not None:
            target.close()
    if stopped.is_set():
        context.exit(INTERRUPTED)  # quietly: no "Aborted!"


def print_log(
    engine: Engine, job_id: int, follow: bool, output: TextIO | None, stopped: Event
) -> None:
    """The job's log lines; with `follow`, new ones too until the job ends or `stopped`."""
    last = 0
    while not stopped.is_set():
        ended = engine.get(job_id).status.terminal  # read before the lines: none is missed
        while page := engine.log(job_id, after=last):
            for line in page:
                text = f"{when(line.at)} [{line.attempt}] {line.level:<7} {line.text}"
                click.echo(text, file=output)
            last = page[-1].id
        if not follow or ended:
            break
        stopped.wait(0.5)


def open_output(path: str) -> TextIO:
    """The file -o names, opened for writing, or a ConfigurationError naming the fix."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigurationError(
            f"-o {path!r} cannot be written: its folder {folder!r} does not exist; "
            "create it or choose another path"
        )
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"-o {path!r} cannot be written ({error.strerror or error}); "
            "point it at a file in a writable folder"
        ) from None


COMMANDS = [submit, list_jobs, show, cancel, rerun, run_now, log]
