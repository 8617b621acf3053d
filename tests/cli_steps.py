"""Shared steps for the CLI tests: an app module to load, running commands, judging errors."""

from __future__ import annotations

import uuid
from pathlib import Path

from click.testing import CliRunner, Result

from jobengine.cli import main

APP_SOURCE = """
from jobengine import Engine

engine = Engine()


@engine.job(queue="mail", priority=3)
def send(to: str, subject: str = "hello", copies: int = 1) -> str:
    return to


@engine.job
def add(a: int, b: int) -> int:
    return a + b
"""
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"


def write_app(folder: Path) -> str:
    """Write an app module with a name of its own into `folder`; return the module name."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    (folder / f"{name}.py").write_text(APP_SOURCE)
    return name


def run(url: str, app: str | None, *arguments: str) -> Result:
    """Run `jobengine --database-url URL [--app APP] ARGUMENTS` in this process."""
    runner = CliRunner(env={"JOBENGINE_DATABASE_URL": None, "JOBENGINE_APP": None})
    options = ["--database-url", url] + (["--app", app] if app else [])
    return runner.invoke(main, [*options, *arguments])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout


def submit(url: str, app: str, *arguments: str) -> int:
    return int(ok(run(url, app, "submit", *arguments)).strip())


def one_clear_line(result: Result, message: str) -> None:
    """The command failed with exactly one line on stderr that says `message`; no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
