"""`jobengine worker|workers|restart`: run a worker, list workers, ask them to restart."""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
import time
from types import FrameType

import click

from jobengine import joblog
from jobengine.cli import engine_of, env_option
from jobengine.cli.output import print_json, print_table
from jobengine.settings import Settings
from jobengine.worker import Worker

DEFAULTS = Settings()


def setup_logging(log_file: str | None, level: str = "INFO") -> None:
    """The worker's own log: one line per move, to stderr and a rotating file."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(
            logging.handlers.RotatingFileHandler(log_file, maxBytes=10 * 1024 * 1024, backupCount=5)
        )
    root = logging.getLogger()
    root.setLevel(level)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(joblog.NotFromJobs())
        root.addHandler(handler)


@click.command("worker")
@env_option("--concurrency", "Jobs run at once (threads).", default=DEFAULTS.concurrency, type=int)
@env_option("--queues", "Comma-separated queues to serve.", default="", show_default="all")
@env_option(
    "--poll-interval",
    "Seconds between checks for due jobs.",
    default=DEFAULTS.poll_interval,
    type=float,
)
@env_option(
    "--shutdown-timeout",
    "Seconds running jobs get to finish on SIGTERM.",
    default=DEFAULTS.shutdown_timeout,
    type=float,
)
@env_option(
    "--cancel-grace",
    "Seconds between the cancel flag and an exception in the job.",
    default=DEFAULTS.cancel_grace,
    type=float,
)
@env_option(
    "--kill-grace",
    "Seconds a process-isolated job gets, from its cancel or timeout, before SIGKILL.",
    default=DEFAULTS.kill_grace,
    type=float,
)
@env_option(
    "--heartbeat-interval",
    "Seconds between heartbeats.",
    default=DEFAULTS.heartbeat_interval,
    type=float,
)
@env_option(
    "--dead-after",
    "Seconds of silence after which a worker is declared dead.",
    default=DEFAULTS.dead_after,
    type=float,
)
@env_option(
    "--schedule-interval",
    "Seconds between ticks of the recurring schedules.",
    default=DEFAULTS.schedule_interval,
    type=float,
)
@env_option("--log-file", "The worker's own log file ('' for none).", default="jobengine.log")
@env_option("--log-level", "The worker's own log level.", default="INFO")
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
    engine = engine_of(context)
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
    setup_logging(log_file or None, log_level.upper())
    instance = Worker(engine, settings)

    def on_signal(number: int, frame: FrameType | None) -> None:
        logging.getLogger("jobengine.worker").info("received %s", signal.Signals(number).name)
        instance.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if instance.run() == "restart":
        engine.close()
        os.execv(sys.executable, [sys.executable, "-m", "jobengine", *sys.argv[1:]])


@click.command("workers")
@click.option("--all", "everything", is_flag=True, help="Include stopped workers.")
@env_option(
    "--dead-after",
    "Seconds of silence after which a worker shows as dead.",
    default=DEFAULTS.dead_after,
    type=float,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def workers(context: click.Context, everything: bool, dead_after: float, as_json: bool) -> None:
    """List workers: host, pid, age, heartbeat age, running jobs and state.

    States: alive, draining (finishing its jobs before it stops), dead (declared dead, or
    silent for longer than --dead-after), stopped (exited cleanly).
    """
    engine = engine_of(context)
    lines = engine.store.workers.overview(time.time(), dead_after, include_stopped=everything)
    if as_json:
        print_json(
            [
                {
                    **vars(line.record),
                    "running_jobs": line.running_jobs,
                    "age": line.age,
                    "heartbeat_age": line.heartbeat_age,
                    "state": line.state,
                }
                for line in lines
            ]
        )
        return
    print_table(
        ["id", "host", "pid", "age", "heartbeat age", "running", "state"],
        [
            [
                line.record.id,
                line.record.host,
                line.record.pid,
                f"{line.age:.0f} s",
                f"{line.heartbeat_age:.1f} s",
                line.running_jobs,
                line.state,
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
