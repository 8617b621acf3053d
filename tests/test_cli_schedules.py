"""`jobengine schedules ...` as an operator uses it: list, add, edit, pause, resume, run-now."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from jobengine import Engine, Status
from jobengine.cli import main

pytestmark = pytest.mark.timeout(60)
APP_SOURCE = """
from jobengine import Engine

engine = Engine()


@engine.job(queue="reports")
def report(region: str, verbose: bool = False) -> str:
    return region
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of an app module, new for each test, importable from the working folder."""
    name = f"schedule_app_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(APP_SOURCE)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def cli(app: str, database_url: str) -> Iterator[CliRunnerCall]:
    yield CliRunnerCall(app, database_url)


class CliRunnerCall:
    def __init__(self, app: str, url: str) -> None:
        self.prefix = ["--app", app, "--database-url", url, "schedules"]

    def __call__(self, *arguments: str) -> Result:
        return CliRunner().invoke(main, [*self.prefix, *arguments])

    def ok(self, *arguments: str) -> str:
        result = self(*arguments)
        assert result.exit_code == 0, result.output
        return result.output


def schedule_count(engine: Engine) -> int:
    return engine.store.schedules.count()


def test_add_list_show_and_json(cli: CliRunnerCall, reader: Engine) -> None:
    added = cli.ok(
        "add", "eu", "report", "--cron", "30 2 * * *", "--tz", "Europe/Berlin",
        "--arg", "region=eu", "--missed", "once", "--overlap", "skip",
    )  # fmt: skip
    assert "added schedule eu: 30 2 * * * (at 02:30 every day, Europe/Berlin)" in added
    cli.ok("add", "often", "report", "--every", "10m", "--json", '{"region": "us"}')

    listing = cli.ok("list", "--next", "2")
    header, *lines = listing.splitlines()
    assert header.split()[:6] == ["name", "type", "schedule", "reading", "zone", "state"]
    eu = next(line for line in lines if line.startswith("eu "))
    assert "at 02:30 every day" in eu and "Europe/Berlin" in eu and "active" in eu
    assert eu.count("02:30 CE") == 2  # two next fire times, in Berlin time
    often = next(line for line in lines if line.startswith("often "))
    assert "every 10m" in often and "every 10 minutes" in often

    data = {row["name"]: row for row in json.loads(cli.ok("list", "--json"))}
    assert data["eu"]["args"] == {"region": "eu"}
    assert (data["eu"]["missed"], data["eu"]["overlap"]) == ("once", "skip")
    assert data["often"]["every"] == 600 and data["often"]["reading"] == "every 10 minutes"
    assert len(data["eu"]["next_fire_times"]) == 5 and data["eu"]["last_run"] is None

    shown = cli.ok("show", "eu", "--next", "10")
    fire_lines = shown.split("--- next 10 fire times ---")[1].split("--- latest runs ---")[0]
    assert fire_lines.count("02:30 CE") == 10
    third = json.loads(cli.ok("show", "eu", "--json", "--next", "3"))["next_fire_times"][2]
    in_berlin = datetime.fromisoformat(third).astimezone(ZoneInfo("Europe/Berlin"))
    assert (in_berlin.hour, in_berlin.minute) == (2, 30)  # an RFC 3339 time, not epoch seconds
    assert schedule_count(reader) == 2


def test_pause_resume_edit_run_now_remove(cli: CliRunnerCall, reader: Engine) -> None:
    cli.ok("add", "eu", "report", "--cron", "*/5 * * * *", "--arg", "region=eu")
    assert cli.ok("pause", "eu") == "paused schedule eu\n"
    assert " paused " in cli.ok("list")
    assert "resumed schedule eu" in cli.ok("resume", "eu")

    edited = cli.ok("edit", "eu", "--cron", "@hourly", "--arg", "verbose=true", "--priority", "7")
    assert "@hourly (at the start of every hour, UTC)" in edited
    schedule = reader.schedules.get("eu")
    assert schedule.args == {"region": "eu", "verbose": True}
    assert (schedule.priority, schedule.expression) == (7, "@hourly")

    job_id = int(cli.ok("run-now", "eu").strip())
    job = reader.get(job_id)
    assert (job.schedule, job.status, job.queue, job.priority) == (
        "eu",
        Status.PENDING,
        "reports",
        7,
    )
    assert f"#{job_id} PENDING" in cli.ok("list")
    assert "by hand" in cli.ok("show", "eu")

    assert cli.ok("remove", "eu") == "removed schedule eu\n"
    assert schedule_count(reader) == 0
    assert reader.get(job_id).schedule == "eu"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--cron", "*/5 * * *"], "has 4 field(s), not 5"),
        (["--cron", "0 25 * * *"], "hour field"),
        (["--cron", "0 0 31 2 *"], "'0 0 31 2 *' never fires (no month in it has that day)"),
        (["--cron", "* * * * *", "--tz", "Europe/Berln"], "did you mean 'Europe/Berlin'"),
        (["--cron", "* * * * *", "--arg", "regio=eu"], "do not fit job type 'report'"),
        (["--cron", "* * * * *", "--json", "[1]"], "must be a JSON object"),
        (["--every", "soon"], "duration 'soon' is not understood"),
        (["--every", "0s"], "at least 1"),
        ([], "give --cron EXPR"),
        (["--cron", "* * * * *", "--every", "1m"], "not both"),
    ],
)
def test_bad_input_is_one_clear_line_and_stores_nothing(
    cli: CliRunnerCall, reader: Engine, arguments: list[str], fragment: str
) -> None:
    args = (
        arguments
        if "--arg" in arguments or "--json" in arguments
        else [*arguments, "--arg", "region=x"]
    )
    result = cli("add", "bad", "report", *args)
    assert result.exit_code != 0
    assert fragment in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert schedule_count(reader) == 0


@pytest.mark.parametrize("command", [["list"], ["show", "eu"]])
def test_a_bad_count_of_fire_times_says_the_range(cli: CliRunnerCall, command: list[str]) -> None:
    cli.ok("add", "eu", "report", "--cron", "@daily", "--arg", "region=eu")
    for value, problem in (
        ("abc", "'abc' is not a whole number"),
        ("1001", "1001 is out of range"),
    ):
        result = cli(*command, "--next", value)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"{problem}; counts of fire times are whole numbers from 0 to 1000" in result.output
        assert "integer range" not in result.output


def test_unknown_type_and_unknown_schedule(cli: CliRunnerCall, reader: Engine) -> None:
    assert schedule_count(reader) == 0  # the database exists: the commands below use it
    result = cli("add", "bad", "nosuch", "--every", "1m")
    assert result.exit_code != 0
    assert "job type 'nosuch' is not registered; known types: report" in result.output
    for command in ("pause", "resume", "remove", "run-now", "show"):
        result = cli(command, "ghost")
        assert result.exit_code != 0, command
        assert "no schedule is named 'ghost'" in result.output
    assert cli("edit", "ghost", "--cron", "@daily").exit_code != 0
    assert schedule_count(reader) == 0


def test_a_real_process_prints_no_traceback(app: str, database_url: str, reader: Engine) -> None:
    command = [sys.executable, "-m", "jobengine", "--app", app, "--database-url", database_url]
    command += ["schedules", "add", "bad", "report", "--cron", "61 * * * *", "--arg", "region=x"]
    process = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert process.returncode != 0
    assert "Traceback" not in process.stderr + process.stdout
    assert process.stderr.strip().splitlines() == [
        "Error: cron expression '61 * * * *' is not valid: its minute field is out of range or "
        "malformed; write five fields 'minute hour day-of-month month day-of-week' (e.g. "
        "'*/5 * * * *' or '30 2 * * *') or one of @hourly, @daily, @weekly, @monthly, @yearly"
    ]
    assert schedule_count(reader) == 0
