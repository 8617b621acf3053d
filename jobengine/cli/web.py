"""`jobengine web`: serve the dashboard and the HTTP API (also started by `jobengine run --web`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobengine.cli import engine_of
from jobengine.cli.values import Count, Seconds
from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
DEAD_AFTER = Settings().dead_after
SECRETS_HELP = (
    "The password for the pages comes from JOBENGINE_WEB_PASSWORD, the API's bearer tokens from"
    " JOBENGINE_WEB_TOKENS (comma-separated) and the key that signs sessions from"
    " JOBENGINE_WEB_SECRET (random per start if unset): never from the command line, where"
    " `ps` would show them."
)


def web_option(name: str, help_text: str, **extra: Any) -> Callable[[F], F]:
    """An option also read from JOBENGINE_WEB_<NAME>, showing that variable and its default."""
    variable = "JOBENGINE_WEB_" + name.strip("-").upper().replace("-", "_")
    extra.setdefault("show_default", True)
    decorator: Callable[[F], F] = click.option(
        name, envvar=variable, show_envvar=True, help=help_text, **extra
    )
    return decorator


def dashboard_server(
    engine: Engine,
    host: str,
    port: int,
    read_only: bool,
    public_url: str | None,
    dead_after: float,
) -> Any:
    """A DashboardServer for `engine`, its secrets from the environment (web extra needed)."""
    try:
        from jobengine.web import DashboardServer, from_environment
    except ImportError as error:
        raise ConfigurationError(
            f"the dashboard needs the web extra ({error.name} is missing);"
            " install it with: pip install 'jobengine[web]'"
        ) from None
    config = from_environment(
        host=host, port=port, read_only=read_only, public_url=public_url, dead_after=dead_after
    )
    return DashboardServer(engine, config)


def dashboard_from_environment(engine: Engine) -> Any:
    """The dashboard `jobengine run --web` starts: settings from JOBENGINE_WEB_* variables."""
    from jobengine.web.config import DEFAULT_HOST, DEFAULT_PORT

    port_text = os.environ.get("JOBENGINE_WEB_PORT", str(DEFAULT_PORT))
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigurationError(f"JOBENGINE_WEB_PORT={port_text!r} is not a port number")
    dead_after = DEAD_AFTER
    if "JOBENGINE_WEB_DEAD_AFTER" in os.environ:  # as `jobengine web --dead-after` reads it
        text = os.environ["JOBENGINE_WEB_DEAD_AFTER"]
        try:
            dead_after = Seconds().convert(text, None, None)
        except click.BadParameter as error:
            raise ConfigurationError(f"JOBENGINE_WEB_DEAD_AFTER={text!r}: {error}") from None
    return dashboard_server(
        engine,
        os.environ.get("JOBENGINE_WEB_HOST", DEFAULT_HOST),
        int(port_text),
        os.environ.get("JOBENGINE_WEB_READ_ONLY", "").lower() in ("1", "true", "yes"),
        os.environ.get("JOBENGINE_WEB_PUBLIC_URL") or None,
        dead_after,
    )


@click.command("web", epilog=SECRETS_HELP)
@web_option(
    "--host",
    "Address to listen on. Anything but 127.0.0.1, ::1 or localhost needs a password.",
    default="127.0.0.1",
)
@web_option(
    "--port",
    "Port to listen on (0 picks a free one).",
    default=8400,
    type=Count(0, 65535, "ports"),
)
@web_option("--read-only", "Hide and refuse every action (cancel, rerun, pause...).", is_flag=True)
@web_option(
    "--public-url",
    "The dashboard's address as people reach it (e.g. https://jobs.example.com); job URLs use it.",
    default=None,
)
@web_option(
    "--dead-after",
    "Seconds of silence after which a worker shows as dead.",
    default=DEAD_AFTER,
    type=Seconds(),  # as every other --dead-after: nan, inf, 0 and negatives are refused
)
@click.pass_context
def web(
    context: click.Context,
    host: str,
    port: int,
    read_only: bool,
    public_url: str | None,
    dead_after: float,
) -> None:
    """Serve the dashboard and the HTTP API (JSON under /api) until Ctrl-C.

    Give --app so that jobs can be submitted through the API: only the app's registered job
    types are accepted. /healthz answers load balancers, /metrics Prometheus.
    """
    engine = engine_of(context)
    server = dashboard_server(engine, host, port, read_only, public_url, dead_after)
    mode = " (read-only)" if read_only else ""
    click.echo(f"jobengine dashboard on {server.url}{mode}; Ctrl-C stops it", err=True)
    server.run()


COMMANDS = [web]
