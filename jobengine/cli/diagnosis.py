"""`jobengine why|doctor|stack|support-bundle`: the engine explains itself."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from jobengine import bundle, stacks
from jobengine.cli import engine_of, env_option
from jobengine.cli.output import print_json
from jobengine.cli.values import JOB_ID, Seconds, parse_duration
from jobengine.errors import ConfigurationError, JobEngineError
from jobengine.model import Status
from jobengine.settings import Settings
from jobengine.why import JobUrl
from jobengine.wording import worker_label

PUBLIC_URL_VARIABLE = "JOBENGINE_WEB_PUBLIC_URL"  # the dashboard's address (see web/config.py)
DEFAULTS = Settings()
Command = Callable[..., Any]
STACK_TIMEOUT = 15.0  # seconds: a worker reads commands when notified, and at every heartbeat


def job_url_builder() -> JobUrl | None:
    """Each job's page on the dashboard, once its public address is configured."""
    base = os.environ.get(PUBLIC_URL_VARIABLE, "").strip()
    if not base:
        return None
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{PUBLIC_URL_VARIABLE}={base!r} must start with http:// or https://"
        )
    return lambda job_id: f"{base.rstrip('/')}/jobs/{job_id}"


def dead_after_option() -> Callable[[Command], Command]:
    """--dead-after, as `jobengine workers` reads it."""
    return env_option(
        "--dead-after",
        "Seconds of silence after which a worker counts as dead.",
        default=DEFAULTS.dead_after,
        type=Seconds(),
    )


@click.command("why")
@click.argument("job_id", type=JOB_ID)
@dead_after_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def why(context: click.Context, job_id: int, dead_after: float, as_json: bool) -> None:
    """Say why a job is where it is: waiting for what, running where, stuck on what, or how
    it ended and who ended it."""
    engine = engine_of(context)
    verdict = engine.why(job_id, dead_after, job_url_builder())
    if as_json:
        print_json(verdict.to_dict())
        return
    url = verdict.evidence.get("url")
    click.echo(f"job {job_id}{f' ({url})' if url else ''}: {verdict.evidence['status']}")
    click.echo(verdict.sentence)


@click.command("doctor")
@dead_after_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(context: click.Context, dead_after: float, as_json: bool) -> None:
    """Check the engine's health: database, schema, workers, queues, waiting and stuck jobs,
    schedules, job types, clocks, file system. Exit status 0 when all is OK, 1 otherwise."""
    report = engine_of(context).doctor(dead_after, job_url_builder())
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(report.text())
    context.exit(report.exit_code)


@click.command("stack")
@click.argument("job_id", type=JOB_ID)
@click.option(
    "--timeout",
    default=STACK_TIMEOUT,
    show_default=True,
    type=Seconds(),
    help="Seconds to wait for the worker's answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stack(context: click.Context, job_id: int, timeout: float, as_json: bool) -> None:
    """Print where a running job is now: the Python stack of its thread or process, asked of
    the worker that runs it (on any host)."""
    engine = engine_of(context)
    job = engine.get(job_id)
    verdict = engine.why(job_id)
    if job.status not in (Status.RUNNING, Status.TO_CANCEL) or job.worker is None:
        raise JobEngineError(f"job {job_id} is {job.status}, not running: {verdict.sentence}")
    if not verdict.evidence.get("worker_alive"):
        raise JobEngineError(f"job {job_id} has no live worker to ask: {verdict.sentence}")
    answer = stacks.ask_stack(engine.store, job.worker, job_id, engine.clock, timeout)
    if answer is None:
        raise JobEngineError(
            f"worker {worker_label(job.worker)} did not answer within {timeout:g} s; it reads"
            " commands when notified and at every heartbeat; `jobengine why"
            f" {job_id}` says whether it is alive"
        )
    if as_json:
        print_json(answer)
        return
    if "error" in answer:
        raise JobEngineError(answer["error"])
    where = f"process {answer['pid']}" if "pid" in answer else f"thread {answer.get('thread')}"
    click.echo(
        f"job {job_id} ({job.type}) attempt {answer['attempt']} on worker"
        f" {worker_label(job.worker)}, {where} (most recent call last):"
    )
    click.echo(answer["text"])
    if answer.get("note"):
        click.echo(f"({answer['note']})")


@click.command("support-bundle")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The file to write.")
@click.option("--job", "jobs", multiple=True, type=JOB_ID, help="A job to include (repeatable).")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Include the jobs that failed this long ago or since: 30m, 24h, 7d.",
)
@env_option("--log-file", "The engine log to include.", default=bundle.DEFAULT_LOG_FILE)
@dead_after_option()
@click.pass_context
def support_bundle(
    context: click.Context,
    output: str | None,
    jobs: tuple[int, ...],
    since: str,
    log_file: str,
    dead_after: float,
) -> None:
    """Write one .tar.gz for a support ticket: the doctor's report, workers, this host's engine
    processes, the engine log, the logs and timelines of the named jobs and of every job not
    ended or failed recently, schedules, versions and settings, with every secret redacted."""
    engine = engine_of(context)
    options = bundle.BundleOptions(
        tuple(jobs),
        parse_duration(since, "--since"),
        log_file or None,
        dead_after,
        job_url_builder(),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(output or f"jobengine-support-{stamp}.tar.gz")
    data = bundle.build(engine, options)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as target:
            target.write(data)
    except OSError as error:
        raise ConfigurationError(
            f"cannot write the bundle to {str(path)!r} ({error.strerror or error}); pass -o FILE"
            " in a writable folder"
        ) from None
    click.echo(f"wrote {path} ({len(data) / 1024:.0f} KiB); attach it to the support ticket")


COMMANDS = [why, doctor, stack, support_bundle]
