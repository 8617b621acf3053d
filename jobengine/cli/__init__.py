"""The `jobengine` command: global options, the app's engine, and errors without tracebacks."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobengine.engine import URL_VARIABLE, Engine
from jobengine.errors import ConfigurationError, JobEngineError
from jobengine.redaction import scrub
from jobengine.store import DEFAULT_URL


class Group(click.Group):
    """A click group that turns jobengine errors into one clear line and exit status 1."""

    def invoke(self, context: click.Context) -> Any:
        try:
            return super().invoke(context)
        except JobEngineError as error:
            raise click.ClickException(without_passwords(context, str(error))) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:
            if not _is_database_error(error):
                raise
            message = (
                f"the database refused the command ({type(error).__name__}: "
                f"{' '.join(str(error).split())}); check `jobengine db status`"
            )
            raise click.ClickException(without_passwords(context, message)) from None


def database_urls(context: click.Context) -> list[str]:
    """Every database URL this command may have used: its passwords must never be printed."""
    urls = [os.environ.get(URL_VARIABLE) or ""]
    lazy = context.find_root().obj
    if isinstance(lazy, _LazyEngine):
        urls.append(lazy.url or "")
        if lazy._engine is not None:
            urls.append(lazy._engine.url)
    return [url for url in urls if url]


def without_passwords(context: click.Context, text: str) -> str:
    """`text` (a message made by other code, a driver's error) with those passwords hidden."""
    return scrub(text, database_urls(context))


def _is_database_error(error: Exception) -> bool:
    """An error raised by the database driver (sqlite3 or psycopg), not a bug in jobengine."""
    module = type(error).__module__
    return module == "sqlite3" or module.startswith("psycopg")


F = TypeVar("F", bound=Callable[..., Any])


def env_option(name: str, help_text: str, **extra: Any) -> Callable[[F], F]:
    """An option read also from JOBENGINE_<NAME>, showing that variable and its default."""
    variable = "JOBENGINE_" + name.strip("-").upper().replace("-", "_")
    extra.setdefault("show_default", True)
    decorator: Callable[[F], F] = click.option(
        name, envvar=variable, show_envvar=True, help=help_text, **extra
    )
    return decorator


def load_engine(app: str | None, url: str | None) -> Engine:
    """The engine of `module[:attribute]`, or a bare one when no app is given."""
    if not app:
        return Engine(url)
    module_name, _, attribute = app.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except JobEngineError:
        raise
    except Exception as error:  # the app's own code failed: one line, not its traceback
        raise ConfigurationError(
            f"cannot import app module {module_name!r} ({type(error).__name__}: {error}); "
            "pass --app module[:attribute] naming a module importable from the current folder"
        ) from error
    engine = getattr(module, attribute or "engine", None)
    if not isinstance(engine, Engine):
        raise ConfigurationError(
            f"{module_name}:{attribute or 'engine'} is not a jobengine Engine; "
            "name the attribute that holds it: --app module:attribute"
        )
    if url:
        engine.configure(url)
    return engine


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar=URL_VARIABLE,
    show_envvar=True,
    default=None,
    help=f"Database URL; overrides the app's. [default: the app's, else {DEFAULT_URL}]",
)
@click.option(
    "--app",
    envvar="JOBENGINE_APP",
    show_envvar=True,
    default=None,
    help="module[:attribute] that creates the Engine and registers job types "
    "[attribute default: engine]",
)
@click.version_option(package_name="jobengine")
@click.pass_context
def main(context: click.Context, database_url: str | None, app: str | None) -> None:
    """jobengine: run background jobs you can always see, recover and stop."""
    context.obj = _LazyEngine(app, database_url)
    context.call_on_close(context.obj.close)


class _LazyEngine:
    """Loads the app only when a command needs it, so `--help` never touches a database."""

    def __init__(self, app: str | None, url: str | None) -> None:
        self.app, self.url = app, url
        self._engine: Engine | None = None

    def get(self) -> Engine:
        if self._engine is None:
            self._engine = load_engine(self.app, self.url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


def engine_of(context: click.Context) -> Engine:
    lazy: _LazyEngine = context.find_root().obj
    return lazy.get()


def _register() -> None:
    from jobengine.cli import database, diagnosis, jobs, schedules, supervisor, web, worker

    for module in (database, jobs, schedules, supervisor, worker, web, diagnosis):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
