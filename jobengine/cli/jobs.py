"""`jobengine submit|jobs|show|cancel|rerun|log`: thin calls into the engine's producer API."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, TextIO

import click

from jobengine.cli import engine_of
from jobengine.cli.output import print_json, print_table, when
from jobengine.errors import ConfigurationError

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90s', '10m', '1h30m', '2d' or plain seconds -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or DURATION.sub("", text):
        raise ConfigurationError(
            f"duration {text!r} is not understood; write e.g. 30s, 10m, 1h30m or 2d"
        )
    return sum(float(n) * UNIT_SECONDS[unit] for n, unit in DURATION.findall(text))


def parse_arguments(pairs: tuple[str, ...], json_text: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if json_text:
        try:
            arguments = json.loads(json_text)
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"--json is not valid JSON: {error}") from None
        if not isinstance(arguments, dict):
            raise ConfigurationError('--json must be a JSON object, e.g. \'{"server": "web-1"}\'')
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--arg {pair!r} must look like key=value")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    return arguments


def parse_at(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"--at {text!r} is not an ISO time; write e.g. 2026-12-01T09:30 or "
            "2026-12-01T09:30:00+01:00 (no offset means this machine's local time)"
        ) from None
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


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
@click.option("--priority", type=int, help="Higher runs first. [default: the job type's]")
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
    engine = engine_of(context)
    job_id = engine.submit(
        type,
        arguments=parse_arguments(pairs, json_text),
        delay=parse_duration(delay) if delay else None,
        run_at=parse_at(at) if at else None,
        priority=priority,
        queue=queue,
        timeout=parse_duration(timeout) if timeout else None,
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
    type=click.IntRange(min=0),
    help="How many jobs at most.",
)
@click.option("--after", type=int, help="Continue after this job id (the next page).")
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
        print_json([job.to_dict() for job in jobs])
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
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(context: click.Context, job_id: int, as_json: bool) -> None:
    """Show a job and the timeline of its events."""
    engine = engine_of(context)
    job, events = engine.get(job_id), engine.events(job_id)
    if as_json:
        print_json({**job.to_dict(), "events": [vars(event) for event in events]})
        return
    for name, value in job.to_dict().items():
        if value is not None and name not in ("output", "errors"):
            click.echo(f"{name:>20}: {json.dumps(value) if name in ('args', 'result') else value}")
    for name in ("output", "errors"):
        if getattr(job, name):
            click.echo(f"--- {name} ---\n{getattr(job, name)}")
    click.echo("--- events ---")
    print_table(
        ["time", "verb", "from", "to", "attempt", "actor", "reason"],
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


@click.command()
@click.argument("job_id", type=int)
@click.option("--reason", help="Why, for the job's events.")
@click.pass_context
def cancel(context: click.Context, job_id: int, reason: str | None) -> None:
    """Cancel a job: waiting jobs end at once, running ones are stopped by their worker."""
    status = engine_of(context).cancel(job_id, actor="cli", reason=reason)
    click.echo(f"job {job_id}: {status}")


@click.command()
@click.argument("job_id", type=int)
@click.pass_context
def rerun(context: click.Context, job_id: int) -> None:
    """Run an ended job again as a new job; prints the new id."""
    click.echo(engine_of(context).rerun(job_id, actor="cli"))


@click.command("log")
@click.argument("job_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.option("--output", "-o", type=click.File("w"), help="Write the log to this file.")
@click.pass_context
def log(context: click.Context, job_id: int, follow: bool, output: TextIO | None) -> None:
    """Print a job's own log."""
    engine = engine_of(context)
    engine.get(job_id)
    last = 0
    while True:
        ended = engine.get(job_id).status.terminal  # read before the lines: none is missed
        while page := engine.log(job_id, after=last):
            for line in page:
                text = f"{when(line.at)} [{line.attempt}] {line.level:<7} {line.text}"
                click.echo(text, file=output)
            last = page[-1].id
        if not follow or ended:
            break
        time.sleep(0.5)


COMMANDS = [submit, list_jobs, show, cancel, rerun, log]
