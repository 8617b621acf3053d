"""Fault: hostile command-line input (issue 10, items 15 and 16).

Each bad value gets one clear line naming the option and the fix, exit status 1 or 2, no
traceback, and nothing stored; worker and supervisor options are refused before anything
starts (each runs as a real process with a deadline, so one that wrongly starts fails the test
instead of hanging it).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_steps import run, submit
from click.testing import Result
from invariants import check_invariants

from jobengine import ConfigurationError, Engine, InvalidSchedule

pytestmark = pytest.mark.timeout(120)
HUGE = "99999999999999999999"  # above 2**63: no integer column holds it
VALID = ["--arg", "a=1", "--arg", "b=2"]


def refused(result: Result, *words: str) -> str:
    """The command failed with exit status 1 or 2 and a last line 'Error: ...' holding `words`,
    without a traceback; return that line."""
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.stderr
    for word in words:
        assert word in last, last
    return last


def stored(reader: Engine) -> tuple[int, int, int]:
    """Jobs, job events and schedules in the database."""
    with reader.store.database.transaction(write=False) as transaction:
        counts = [
            transaction.execute(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
            for table in ("jobs", "job_events", "schedules")
        ]
    return int(counts[0]), int(counts[1]), int(counts[2])


# -- jobs and schedules --------------------------------------------------------------------------

BAD_COMMANDS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "priority above 2**63": (
        ["submit", "add", *VALID, "--priority", HUGE],
        ("--priority", "whole numbers from -2147483648 to 2147483647"),  # INTEGER on PostgreSQL
    ),
    "priority above 2**31": (
        ["submit", "add", *VALID, "--priority", "2147483648"],
        ("--priority", "whole numbers from -2147483648 to 2147483647"),
    ),
    "priority not a number": (["submit", "add", *VALID, "--priority", "nan"], ("--priority",)),
    "show an id above 2**63": (["show", HUGE], ("JOB_ID", "job ids are whole numbers from 1")),
    "cancel a negative id": (["cancel", "--", "-5"], ("JOB_ID", "from 1 to")),
    "log of id 0": (["log", "0"], ("JOB_ID", "from 1 to")),
    "rerun an id above 2**63": (["rerun", HUGE], ("JOB_ID",)),
    "at year 1": (
        ["submit", "add", *VALID, "--at", "0001-01-01T00:00"],
        ("--at", "between 1970-01-01 and 9999-12-31"),
    ),
    "at year 99999": (["submit", "add", *VALID, "--at", "99999-01-01"], ("--at", "ISO time")),
    "in 10**20 days": (
        ["submit", "add", *VALID, "--in", f"{HUGE}d"],
        ("--in", "too long; the longest is 36500d"),
    ),
    "in nan": (["submit", "add", *VALID, "--in", "nan"], ("--in", "write e.g. 30s")),
    "timeout of 10**20 days": (
        ["submit", "add", *VALID, "--timeout", f"{HUGE}d"],
        ("--timeout", "the longest is 36500d"),
    ),
    "timeout of 0": (["submit", "add", *VALID, "--timeout", "0"], ("timeout", "positive")),
    "argument beyond a float": (["submit", "add", "--arg", "a=1e999", "--arg", "b=1"], ("JSON",)),
    "limit above 2**63": (["jobs", "--limit", HUGE], ("--limit", "from 0 to 10000")),
    "limit of a million": (["jobs", "--limit", "1000000"], ("--limit", "from 0 to 10000")),
    "negative after": (["jobs", "--after", "-1"], ("--after", "from 0 to")),
    "every 10**14 days": (
        ["schedules", "add", "s", "add", "--every", "99999999999999d"],
        ("--every", "the longest is 36500d"),
    ),
    "every 0s": (["schedules", "add", "s", "add", "--every", "0s"], ("--every", "at least 1")),
    "every 1.5s": (["schedules", "add", "s", "add", "--every", "1.5s"], ("--every", "whole")),
    "missed window of 10**20 days": (
        ["schedules", "add", "s", "add", "--every", "1h", "--missed-window", f"{HUGE}d"],
        ("--missed-window", "the longest"),
    ),
    "schedule priority above 2**63": (
        ["schedules", "add", "s", "add", "--every", "1h", "--priority", HUGE],
        ("--priority", "whole numbers"),
    ),
    "next 10**20 fire times": (["schedules", "list", "--next", HUGE], ("--next",)),
}


@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_bad_input_is_one_clear_line_and_stores_nothing(
    database_url: str, app: str, reader: Engine, case: str
) -> None:
    arguments, words = BAD_COMMANDS[case]
    submit(database_url, app, "add", *VALID)
    before = stored(reader)
    refused(run(database_url, app, *arguments), *words)
    assert stored(reader) == before
    listed = run(database_url, app, "schedules", "list")
    assert listed.exit_code == 0, listed.output
    check_invariants(database_url)


def test_the_api_refuses_what_no_column_or_calendar_holds(reader: Engine) -> None:
    reader.job(lambda a: a, name="echo")
    reader.store  # noqa: B018 - create the schema, so that "nothing stored" is measurable
    before = stored(reader)
    bad_submits: list[tuple[dict[str, Any], str]] = [
        ({"priority": 2**63}, "does not fit a 32-bit integer"),  # INTEGER on PostgreSQL
        ({"priority": 2**31}, "does not fit a 32-bit integer"),
        ({"priority": 10**5000}, "more than 4300 digits"),
        ({"run_at": datetime(1, 1, 1, tzinfo=UTC)}, "before 1970-01-01 or after 9999-12-31"),
        ({"run_at": 10**400}, "run_at must be a finite time"),
        ({"delay": 1e300}, "before 1970-01-01 or after 9999-12-31"),
        ({"delay": timedelta(days=999_999_999)}, "after 9999-12-31"),
        ({"timeout": 10**400}, "timeout must be a positive number of seconds, at most"),
        ({"timeout": math.inf}, "timeout must be a positive number of seconds"),
        ({"max_attempts": 2**64}, "does not fit a 32-bit integer"),
    ]
    for options, message in bad_submits:
        with pytest.raises(ConfigurationError, match=message):
            reader.submit("echo", a=1, **options)
    for every in (1e300, 10**400, -(10**400), math.nan, math.inf, timedelta(days=10**8)):
        with pytest.raises(InvalidSchedule, match=r"every=.* (longer than 100 years|whole)"):
            reader.schedules.add("bad", "echo", every=every)
    with pytest.raises(ConfigurationError, match=r"limit=.* does not fit a 64-bit integer"):
        reader.list(limit=2**63)
    assert stored(reader) == before


# -- worker and supervisor options ---------------------------------------------------------------

BAD_WORKER_OPTIONS: dict[str, tuple[list[str], str]] = {
    "concurrency 0": (["worker", "--concurrency", "0"], "--concurrency"),
    "concurrency -4": (["worker", "--concurrency", "-4"], "--concurrency"),
    "concurrency above 2**63": (["worker", "--concurrency", HUGE], "--concurrency"),
    "poll interval 0": (["worker", "--poll-interval", "0"], "--poll-interval"),
    "poll interval nan": (["worker", "--poll-interval", "nan"], "--poll-interval"),
    "heartbeat interval -1": (["worker", "--heartbeat-interval", "-1"], "--heartbeat-interval"),
    "heartbeat interval inf": (["worker", "--heartbeat-interval", "inf"], "--heartbeat-interval"),
    "dead after 0": (["worker", "--dead-after", "0"], "--dead-after"),
    "dead after not above the heartbeat": (
        ["worker", "--heartbeat-interval", "5", "--dead-after", "5"],
        "--dead-after",
    ),
    "shutdown timeout 0": (["worker", "--shutdown-timeout", "0"], "--shutdown-timeout"),
    "shutdown timeout nan": (["worker", "--shutdown-timeout", "nan"], "--shutdown-timeout"),
    "schedule interval 1e999": (["worker", "--schedule-interval", "1e999"], "--schedule-interval"),
    "cancel grace -1": (["worker", "--cancel-grace", "-1"], "--cancel-grace"),
    "log level loud": (["worker", "--log-level", "loud"], "--log-level"),
    "run with 0 workers": (["run", "--workers", "0"], "--workers"),
    "run with -2 workers": (["run", "--workers", "-2"], "--workers"),
    "run with a poll interval of 0": (["run", "--poll-interval", "0"], "--poll-interval"),
    "run, restart delay nan": (["run", "--restart-delay", "nan"], "--restart-delay"),
    "run, longest restart delay below the first": (
        ["run", "--restart-delay", "10", "--restart-delay-max", "5"],
        "--restart-delay-max",
    ),
    "run, dead after not above the heartbeat": (
        ["run", "--heartbeat-interval", "9", "--dead-after", "3"],
        "--dead-after",
    ),
}


def jobengine(folder: Path, url: str, *arguments: str, **variables: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobengine", *arguments],
        cwd=folder,
        env={**os.environ, "JOBENGINE_DATABASE_URL": url, "JOBENGINE_LOG_FILE": "", **variables},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Exit status and stderr; a process still running after 30 s started when it must not."""
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the command started instead of refusing its options") from None
    return process.returncode, stderr


@pytest.mark.parametrize("case", list(BAD_WORKER_OPTIONS))
def test_nonsense_worker_options_are_refused_naming_the_option(
    sqlite_url: str, tmp_path: Path, case: str
) -> None:
    arguments, option = BAD_WORKER_OPTIONS[case]
    status, stderr = finished(jobengine(tmp_path, sqlite_url, *arguments))
    assert status == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: Invalid value for '{option}'"), stderr
    assert not (tmp_path / "jobs.db").exists(), "refused before the database was opened"


def test_a_bad_value_from_the_environment_names_its_variable(
    sqlite_url: str, tmp_path: Path
) -> None:
    process = jobengine(tmp_path, sqlite_url, "worker", JOBENGINE_CONCURRENCY="0")
    status, stderr = finished(process)
    assert status == 2 and "Traceback" not in stderr
    assert "'--concurrency' (env var: 'JOBENGINE_CONCURRENCY'): 0 is out of range" in stderr
    assert not (tmp_path / "jobs.db").exists()
