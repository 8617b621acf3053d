"""`jobengine worker|workers|restart`: run a worker, list workers, ask them to restart."""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import click

from jobengine import joblog, representation
from jobengine.cli import database_urls, engine_of, env_option
from jobengine.cli.output import age, duration, print_json, print_table, utc
from jobengine.cli.values import Count, Seconds
from jobengine.errors import ConfigurationError
from jobengine.loglines import with_heads
from jobengine.redaction import scrub
from jobengine.settings import Settings
from jobengine.worker import Worker

DEFAULTS = Settings()
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MOST_THREADS = 10_000
FORMATTED = "jobengine_line"  # where a record keeps its formatted line


class PasswordFreeFormatter(logging.Formatter):
    """Formats a log line (and its traceback) with the passwords of the database URLs hidden."""

    def __init__(self, format_text: str, urls: Sequence[str]) -> None:
        super().__init__(format_text)
        self.urls = list(urls)

    def format(self, record: logging.LogRecord) -> str:
        """Formatted once per record, however many handlers (stderr, the file) write it."""
        line: str | None = getattr(record, FORMATTED, None)
        if line is None:
            line = scrub(with_heads(record, super().format), self.urls)
            setattr(record, FORMATTED, line)
        return line


def setup_logging(log_file: str | None, level: str = "INFO", urls: Sequence[str] = ()) -> None:
    """The worker's own log: one line per move, to stderr and a rotating file; no password of
    `urls` ever appears in it, whoever wrote the message."""
    formatter = PasswordFreeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", urls)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    log_file, maxBytes=10 * 1024 * 1024, backupCount=5
                )
            )
        except OSError as error:
            raise ConfigurationError(
                f"--log-file {log_file!r} cannot be written ({error.strerror or error}); "
                "point it at a file in a writable folder, or pass --log-file '' for none"
            ) from None
    root = logging.getLogger()
    root.setLevel(level)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(joblog.NotFromJobs())
        root.addHandler(handler)


def check_intervals(values: dict[str, Any]) -> None:
    """What each option cannot say alone: a worker must beat more often than it is declared
    dead, or every peer would reap it between two of its own heartbeats."""
    if values["dead_after"] <= values["heartbeat_interval"]:
        raise click.BadParameter(
            f"{values['dead_after']:g} s is not longer than --heartbeat-interval "
            f"({values['heartbeat_interval']:g} s); give at least three heartbeats, e.g. "
            f"--dead-after {max(3 * values['heartbeat_interval'], DEFAULTS.dead_after):g}",
            param_hint="'--dead-after'",
        )


@click.command("worker")
@env_option(
    "--concurrency",
    "Jobs run at once (threads).",
    default=DEFAULTS.concurrency,
    type=Count(1, MOST_THREADS, "thread counts"),
)
@env_option("--queues", "Comma-separated queues to serve.", default="", show_default="all")
@env_option(
    "--poll-interval",
    "Seconds between checks for due jobs.",
    default=DEFAULTS.poll_interval,
    type=Seconds(),
)
@env_option(
    "--shutdown-timeout",
    "Seconds running jobs get to finish on SIGTERM.",
    default=DEFAULTS.shutdown_timeout,
    type=Seconds(),
)
@env_option(
    "--cancel-grace",
    "Seconds between the cancel flag and an exception in the job.",
    default=DEFAULTS.cancel_grace,
    type=Seconds(zero_allowed=True),
)
@env_option(
    "--kill-grace",
    "Seconds a process-isolated job gets, from its cancel or timeout, before SIGKILL.",
    default=DEFAULTS.kill_grace,
    type=Seconds(zero_allowed=True),
)
@env_option(
    "--heartbeat-interval",
    "Seconds between heartbeats.",
    default=DEFAULTS.heartbeat_interval,
    type=Seconds(),
)
@env_option(
    "--dead-after",
    "Seconds of silence after which a worker is declared dead; more than the heartbeat interval.",
    default=DEFAULTS.dead_after,
    type=Seconds(),
)
@env_option(
    "--schedule-interval",
    "Seconds between ticks of the recurring schedules.",
    default=DEFAULTS.schedule_interval,
    type=Seconds(),
)
@env_option("--log-file", "The worker's own log file ('' for none).", default="jobengine.log")
@env_option(
    "--log-level",
    "The worker's own log level.",
    default="INFO",
    type=click.Choice(LEVELS, case_sensitive=False),
)
@click.pass_context
def worker(
    context: click.Context,
    concurrency: int,
    queues: str,
    poll_interval: float,
    shutdown_timeout: float,
    cancel_grace: float,
    kill_grace: float,
    heartbeat_interval: float,
    dead_after: float,
    schedule_interval: float,
    log_file: str,
    log_level: str,
) -> None:
    """Claim and run jobs until SIGTERM or SIGINT (a second signal stops waiting)."""
    check_intervals({"dead_after": dead_after, "heartbeat_interval": heartbeat_interval})
    engine = engine_of(context, creates=True)
    settings = Settings(
        concurrency=concurrency,
        queues=tuple(q for q in queues.split(",") if q),
        poll_interval=poll_interval,
        heartbeat_interval=heartbeat_interval,
        dead_after=dead_after,
        shutdown_timeout=shutdown_timeout,
        cancel_grace=cancel_grace,
        kill_grace=kill_grace,
        schedule_interval=schedule_interval,
    )
    setup_logging(log_file or None, log_level.upper(), database_urls(context))
    instance = Worker(engine, settings)

    def on_signal(number: int, frame: FrameType | None) -> None:
        logging.getLogger("jobengine.worker").info("received %s", signal.Signals(number).name)
        instance.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The process is the worker's: what it holds by now (the app, the modules) lives as long as
    # it does, so full collections need not walk it again (7% of a busy worker's time).
    gc.collect()
    gc.freeze()
    if instance.run() == "restart":
        engine.close()
        os.execv(sys.executable, [sys.executable, "-m", "jobengine", *sys.argv[1:]])


@click.command("workers")
@click.option("--all", "everything", is_flag=True, help="Include stopped workers.")
@env_option(
    "--dead-after",
    "Seconds of silence after which a worker shows as dead.",
    default=DEFAULTS.dead_after,
    type=Seconds(),
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def workers(context: click.Context, everything: bool, dead_after: float, as_json: bool) -> None:
    """List workers: host, pid, start time, age, last heartbeat, running jobs, state, and the
    job types each serves.

    States: alive, draining (finishing its jobs before it stops), dead (declared dead, or
    silent for longer than --dead-after), stopped (exited cleanly).
    """
    engine = engine_of(context)
    now = engine.clock.now()
    lines = engine.store.workers.overview(now, dead_after, include_stopped=everything)
    if as_json:
        print_json([{"types": line.record.types, **representation.worker(line)} for line in lines])
        return
    print_table(
        ["id", "host", "pid", "started", "age", "heartbeat", "running", "state", "types"],
        [
            [
                line.record.id,
                line.record.host,
                line.record.pid,
                utc(line.record.started_at),
                duration(line.age),
                age(line.record.heartbeat, now),
                line.running_jobs,
                line.state,
                ", ".join(line.record.types) or "-",
            ]
            for line in lines
        ],
    )


@click.command("restart")
@click.pass_context
def restart(context: click.Context) -> None:
    """Ask every running worker, on every host, to drain and start again."""
    count = engine_of(context).store.workers.request("restart")
    click.echo(f"asked {count} worker(s) to restart")


COMMANDS = [worker, workers, restart]
