"""`jobengine run`: the supervisor for one host, its options, and what it passes to workers."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from jobengine.cli import database_urls, engine_of, env_option
from jobengine.cli.values import Count, Seconds
from jobengine.cli.web import dashboard_from_environment
from jobengine.cli.worker import check_intervals, setup_logging
from jobengine.cli.worker import worker as worker_command
from jobengine.engine import URL_VARIABLE, Engine
from jobengine.errors import DatabaseUnavailable
from jobengine.supervisor import Supervisor, SupervisorSettings
from jobengine.watch import WorkerWatch

DEFAULTS = SupervisorSettings()
MOST_WORKERS = 1000
# Every option of `jobengine worker`, with its environment variable and default, passed on.
WORKER_OPTIONS = [
    copy.copy(param) for param in worker_command.params if isinstance(param, click.Option)
]
for _param in WORKER_OPTIONS:
    if _param.name == "log_file":
        _param.help = (
            "The supervisor's log file; worker N writes its own beside it, e.g. "
            "jobengine-worker-1.log ('' for none)."
        )
log = logging.getLogger("jobengine.supervisor")


@click.command("run")
@env_option(
    "--workers",
    "Worker processes to keep running on this host.",
    default=DEFAULTS.workers,
    type=Count(1, MOST_WORKERS, "worker counts"),
)
@env_option(
    "--web",
    "Also serve the dashboard in the supervisor process (JOBENGINE_WEB_HOST, _PORT,"
    " _PASSWORD, _TOKENS as for `jobengine web`). [default: off]",
    is_flag=True,
    default=False,
)
@env_option(
    "--restart-delay",
    "Seconds before restarting a worker that died; doubles each time it dies again within "
    "10 s of its start.",
    default=DEFAULTS.restart_delay,
    type=Seconds(zero_allowed=True),
)
@env_option(
    "--restart-delay-max",
    "The longest wait before restarting a worker that keeps dying.",
    default=DEFAULTS.restart_delay_max,
    type=Seconds(),
)
@env_option(
    "--ready-timeout",
    "Seconds a replacement gets to register during a rolling restart (SIGHUP); if it does "
    "not, the old worker is kept and the rolling restart stops.",
    default=DEFAULTS.ready_timeout,
    type=Seconds(),
)
@click.pass_context
def run(
    context: click.Context,
    /,
    workers: int,
    web: bool,
    restart_delay: float,
    restart_delay_max: float,
    ready_timeout: float,
    **worker_options: Any,
) -> None:
    """Run WORKERS worker processes on this host and keep them running.

    A worker that dies is restarted (waiting longer each time it dies again soon after its
    start). SIGTERM or SIGINT: every worker drains (no new jobs; running ones get the shutdown
    timeout), then the supervisor exits; a second signal tells the workers to stop waiting; a
    third kills them. SIGHUP: the workers are replaced one by one, each old one draining only
    once its replacement has registered. The other options are passed to every worker.
    """
    check_intervals(worker_options)
    check_restart_delays(restart_delay, restart_delay_max)
    setup_logging(
        worker_options["log_file"] or None,
        worker_options["log_level"].upper(),
        database_urls(context),
    )
    engine = engine_of(context, creates=True)  # an app that cannot load fails here, once
    with contextlib.suppress(DatabaseUnavailable):  # a server that is down may come back
        engine.store  # noqa: B018 - a URL or a folder that is wrong never will: say so once
    settings = SupervisorSettings(
        workers=workers,
        restart_delay=restart_delay,
        restart_delay_max=restart_delay_max,
        ready_timeout=ready_timeout,
        stop_timeout=stop_timeout(worker_options),
    )
    supervisor = Supervisor(
        worker_arguments(context, worker_options),
        settings,
        worker_environment(context),
        WorkerWatch(engine, worker_options["dead_after"]),
    )
    context.exit(supervise(supervisor, engine, web))


def check_restart_delays(first: float, longest: float) -> None:
    if longest < first:
        raise click.BadParameter(
            f"{longest:g} s is shorter than --restart-delay ({first:g} s); "
            "give a longest wait at least as long as the first",
            param_hint="'--restart-delay-max'",
        )


def supervise(supervisor: Supervisor, engine: Engine, web: bool) -> int:
    """Run the supervisor until it stops, with the dashboard beside it when asked."""
    dashboard = dashboard_from_environment(engine).start() if web else None
    if dashboard is not None:
        log.info("dashboard on %s", dashboard.url)
    try:
        return supervisor.run()
    finally:
        if dashboard is not None:
            dashboard.stop()


run.params.extend(WORKER_OPTIONS)


def stop_timeout(values: dict[str, Any]) -> float:
    """How long a worker may take to stop after SIGTERM before it is killed: its shutdown
    timeout, the cancel ladder's graces, and 10 s to record outcomes and exit."""
    return float(values["shutdown_timeout"] + values["cancel_grace"] + values["kill_grace"] + 10)


def worker_environment(context: click.Context) -> dict[str, str]:
    """This environment, plus --database-url as a variable: not on the command line, where
    `ps` would show its password."""
    environment = dict(os.environ)
    url = context.find_root().obj.url
    if url:
        environment[URL_VARIABLE] = url
    return environment


def worker_arguments(context: click.Context, values: dict[str, Any]) -> Callable[[int], list[str]]:
    """The arguments of the worker in each slot: --app, `worker`, the options given, and a log
    file of its own (jobengine.log -> jobengine-worker-1.log)."""
    app = context.find_root().obj.app
    passed: list[str] = ["--app", app] if app else []
    passed.append("worker")
    for param in WORKER_OPTIONS:
        source = context.get_parameter_source(str(param.name))
        if param.name == "log_file" or source in (None, ParameterSource.DEFAULT):
            continue
        value = values[str(param.name)]
        if param.is_flag:
            passed += [param.opts[0]] if value else list(param.secondary_opts[:1])
        else:
            passed += [param.opts[0], str(value)]
    log_file = values["log_file"]

    def arguments(slot: int) -> list[str]:
        if not log_file:
            return [*passed, "--log-file", ""]
        path = Path(log_file)
        return [
            *passed,
            "--log-file",
            str(path.with_name(f"{path.stem}-worker-{slot}{path.suffix}")),
        ]

    return arguments


COMMANDS = [run]
