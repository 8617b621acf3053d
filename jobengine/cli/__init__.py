"""The `jobengine` command: global options, the app's engine, and errors without tracebacks."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
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
        raise ConfigurationError(import_problem(module_name, error)) from error
    engine = engine_attribute(module, module_name, attribute or "engine")
    if url:
        engine.configure(url)
    return engine


def import_problem(module_name: str, error: Exception) -> str:
    """Why `import module_name` failed, in one line that names the fix."""
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if missing is not None and (missing == module_name or module_name.startswith(missing + ".")):
        hint = ""
        if module_name.endswith(".py"):
            name = module_name.removesuffix(".py").replace(os.sep, ".")
            hint = f"; write --app {name} (a module name, not a file name)"
        return (
            f"cannot import app module {module_name!r} ({type(error).__name__}: {error}); "
            "pass --app module[:attribute] naming a module importable from the current folder"
            + hint
        )
    see = f"run python -c 'import {module_name}' to see the traceback"
    where = error_location(error, module_name)
    if missing is not None:
        return (
            f"app module {module_name!r} imports a missing module {missing!r} ({where}); "
            f"install it in this environment, or {see}"
        )
    text = " ".join(str(error.msg if isinstance(error, SyntaxError) else error).split())
    said = f": {text}" if text else ""
    return (
        f"app module {module_name!r} raised {type(error).__name__} at import{said} ({where}); {see}"
    )


def error_location(error: BaseException, module_name: str) -> str:
    """'app.py, line 3': the line of the app module that raised (else the innermost one)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{shown_path(error.filename)}, line {error.lineno}"
    frames = [
        (frame, line)
        for frame, line in traceback.walk_tb(error.__traceback__)
        if not frame.f_code.co_filename.startswith("<frozen")
    ]
    own = [
        (frame, line) for frame, line in frames if frame.f_globals.get("__name__") == module_name
    ]
    if not (own or frames):
        return "no line known"
    frame, line = (own or frames)[-1]
    return f"{shown_path(frame.f_code.co_filename)}, line {line}"


def shown_path(path: str) -> str:
    """A file under the current folder relative to it; any other as it is."""
    absolute = os.path.abspath(path)
    here = os.getcwd()
    return os.path.relpath(absolute, here) if absolute.startswith(here + os.sep) else path


def engine_attribute(module: Any, module_name: str, attribute: str) -> Engine:
    """The Engine `module.attribute` holds, or a ConfigurationError naming the right one."""
    engines = [name for name, value in vars(module).items() if isinstance(value, Engine)]
    found = (
        f" (it has an Engine in {engines[0]!r}: --app {module_name}:{engines[0]})"
        if engines
        else ""
    )
    if not hasattr(module, attribute):
        raise ConfigurationError(
            f"module {module_name} has no attribute {attribute!r}{found}; name the attribute"
            " that holds the Engine: --app module:attribute"
        )
    engine = getattr(module, attribute)
    if not isinstance(engine, Engine):
        raise ConfigurationError(
            f"{module_name}:{attribute} is not a jobengine Engine{found}; "
            "name the attribute that holds it: --app module:attribute"
        )
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


def engine_of(context: click.Context, creates: bool = False) -> Engine:
    """The app's engine; unless the command `creates` (submit, worker, run, schedules add),
    a database that does not exist yet is refused, not created at a mistyped path."""
    lazy: _LazyEngine = context.find_root().obj
    engine = lazy.get()
    engine.creates_database = creates
    return engine


def _register() -> None:
    from jobengine.cli import database, diagnosis, jobs, schedules, supervisor, web, worker

    for module in (database, jobs, schedules, supervisor, worker, web, diagnosis):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
