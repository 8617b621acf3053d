"""The CLI as its user meets it: submit, jobs, show, cancel, rerun, run-now, log, and --help."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
import pytest
from cli_steps import ok, one_clear_line, run, submit
from click.testing import CliRunner

from jobengine import Engine, Status
from jobengine.cli import main
from jobengine.store import LogLine, Move

UNSET = getattr(click.core, "UNSET", None)  # click >= 8.3 marks "no default" with a sentinel
CONSOLE_SCRIPT = Path(sys.executable).parent / "jobengine"
LATEST_TIME = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC


@pytest.fixture
def tokyo_time() -> Iterator[None]:
    """This process's local time is Tokyo's (9 hours ahead of UTC) for the test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


# -- submit --------------------------------------------------------------------------------------


def test_submit_with_args(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(database_url, app, "send", "--arg", "to=ada@example.com", "--arg", "copies=2")
    job = reader.get(job_id)
    assert (job.type, job.queue, job.priority, job.status) == ("send", "mail", 3, Status.PENDING)
    assert job.args == {"to": "ada@example.com", "copies": 2}
    assert [(e.verb, e.actor) for e in reader.events(job_id)] == [("submit", "cli")]


def test_submit_with_json_and_overrides(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(
        database_url,
        app,
        "add",
        "--json",
        '{"a": 1, "b": 2}',
        "--arg",
        "b=40",
        "--priority",
        "-2",
        "--queue",
        "math",
        "--timeout",
        "90s",
    )
    job = reader.get(job_id)
    assert (job.args, job.priority, job.queue, job.timeout) == ({"a": 1, "b": 40}, -2, "math", 90)
    text_id = submit(database_url, app, "send", "--arg", "to=007", "--arg", "subject=")
    assert reader.get(text_id).args == {"to": "007", "subject": ""}  # not JSON: kept as text


@pytest.mark.parametrize(("delay", "seconds"), [("10m", 600), ("1h30m", 5400), ("90", 90)])
def test_submit_in(database_url: str, app: str, reader: Engine, delay: str, seconds: int) -> None:
    before = time.time()
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2", "--in", delay)
    after = time.time()
    job = reader.get(job_id)
    assert before + seconds <= job.run_at <= after + seconds


@pytest.mark.parametrize(
    "moment", ["2030-01-02T03:04:05+00:00", "2030-01-02T03:04:05+05:30", "2030-01-02T03:04"]
)
def test_submit_at(database_url: str, app: str, reader: Engine, moment: str) -> None:
    job_id = submit(database_url, app, "add", "--json", '{"a": 1, "b": 2}', "--at", moment)
    expected = datetime.fromisoformat(moment)
    if expected.tzinfo is None:  # no offset: this machine's local time
        expected = expected.astimezone()
    assert reader.get(job_id).run_at == pytest.approx(expected.timestamp())


def test_submit_at_with_local_time_ahead_of_utc(
    database_url: str, app: str, reader: Engine, tokyo_time: None
) -> None:
    assert time.localtime(0).tm_hour == 9  # the fixture took effect
    moments = {
        "2027-06-01T02:30:00Z": datetime.fromisoformat("2027-06-01T02:30:00+00:00").timestamp(),
        "2027-06-01T02:30": datetime.fromisoformat("2027-05-31T17:30:00+00:00").timestamp(),
        "9999-12-31T23:59:59Z": LATEST_TIME,
        "9999-12-31T23:59:59": LATEST_TIME - 9 * 3600,
    }
    for moment, seconds in moments.items():
        job_id = submit(database_url, app, "add", "--json", '{"a": 1, "b": 2}', "--at", moment)
        assert reader.get(job_id).run_at == seconds, moment
    one_clear_line(
        run(database_url, app, "submit", "add", "--at", "9999-12-31T23:59:59-01:00"),
        "--at '9999-12-31T23:59:59-01:00' is out of range; give a time between 1970-01-01",
    )


# -- reading and steering ------------------------------------------------------------------------


def test_jobs_as_a_table_and_as_json(database_url: str, app: str) -> None:
    first = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    second = submit(database_url, app, "send", "--arg", "to=x")
    table = ok(run(database_url, app, "jobs")).splitlines()
    assert table[0].split() == ["id", "type", "queue", "status", "attempt", "created", "worker"]
    assert [line.split()[:4] for line in table[1:]] == [
        [str(second), "send", "mail", "PENDING"],
        [str(first), "add", "default", "PENDING"],
    ]
    listed = json.loads(ok(run(database_url, app, "jobs", "--json")))
    assert [(job["id"], job["type"], job["status"]) for job in listed] == [
        (second, "send", "PENDING"),
        (first, "add", "PENDING"),
    ]
    assert listed[0]["args"] == {"to": "x"}
    only = json.loads(ok(run(database_url, app, "jobs", "--json", "--type", "add")))
    assert [job["id"] for job in only] == [first]
    page = json.loads(ok(run(database_url, app, "jobs", "--json", "--limit", "1")))
    after = json.loads(ok(run(database_url, app, "jobs", "--json", "--after", str(page[0]["id"]))))
    assert [job["id"] for job in page + after] == [second, first]
    ok(run(database_url, app, "cancel", str(first)))
    canceled = json.loads(ok(run(database_url, app, "jobs", "--json", "--status", "canceled")))
    assert [job["id"] for job in canceled] == [first]


def test_show_a_job_with_its_events(database_url: str, app: str) -> None:
    job_id = submit(database_url, app, "send", "--arg", "to=ada")
    ok(run(database_url, app, "cancel", str(job_id), "--reason", "wrong address"))
    text = ok(run(database_url, app, "show", str(job_id)))
    assert "status: CANCELED" in text
    assert 'args: {"to": "ada"}' in text
    timeline = text.split("--- events ---")[1]
    assert "submit" in timeline and "wrong address" in timeline
    data = json.loads(ok(run(database_url, app, "show", str(job_id), "--json")))
    assert (data["id"], data["status"], data["args"]) == (job_id, "CANCELED", {"to": "ada"})
    assert [(e["verb"], e["from_status"], e["to_status"]) for e in data["events"]] == [
        ("submit", None, "PENDING"),
        ("cancel", "PENDING", "CANCELED"),
    ]
    assert data["events"][1]["reason"] == "wrong address"


def test_cancel_and_rerun(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    assert ok(run(database_url, app, "cancel", str(job_id))).strip() == f"job {job_id}: CANCELED"
    again = run(database_url, app, "cancel", str(job_id))
    one_clear_line(again, f"job {job_id} already ended CANCELED; nothing to cancel")
    new_id = int(ok(run(database_url, app, "rerun", str(job_id))).strip())
    new = reader.get(new_id)
    assert (new.rerun_of, new.status, new.args) == (job_id, Status.PENDING, {"a": 1, "b": 2})
    one_clear_line(run(database_url, app, "rerun", str(new_id)), "only ended jobs can be rerun")


def test_cancel_a_running_job(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    [claimed] = reader.store.jobs.claim("w1", [], 1, time.time())
    reader.store.jobs.move(Move(job_id, 1, Status.QUEUED, Status.RUNNING, "start", "w1"), 1.0)
    assert claimed.id == job_id
    assert ok(run(database_url, app, "cancel", str(job_id))).strip() == f"job {job_id}: TO_CANCEL"


def test_run_now_makes_a_job_due_later_due_now(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2", "--in", "2h")
    printed = ok(run(database_url, app, "run-now", str(job_id))).strip()
    assert printed.startswith(f"job {job_id}: due now (it was due ")
    assert "the next free worker runs it" in printed and "\n" not in printed
    assert reader.get(job_id).run_at <= time.time()
    assert [(e.verb, e.actor) for e in reader.events(job_id)][-1] == ("run_now", "cli")
    again = ok(run(database_url, app, "run-now", str(job_id))).strip()
    assert again == f"job {job_id} was already due; nothing changed"
    assert [e.verb for e in reader.events(job_id)].count("run_now") == 1


def test_run_now_refuses_unknown_and_ended_jobs(database_url: str, app: str) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2", "--in", "1h")
    one_clear_line(run(database_url, app, "run-now", "424242"), "no job has id 424242")
    ok(run(database_url, app, "cancel", str(job_id)))
    one_clear_line(
        run(database_url, app, "run-now", str(job_id)),
        f"job {job_id} is CANCELED; only a PENDING job waits for its time",
    )
    bad = run(database_url, app, "run-now", "abc")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "abc" in bad.stderr


def test_log_prints_the_job_log(
    database_url: str, app: str, reader: Engine, tmp_path: Path
) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    reader.store.logs.append(
        [
            LogLine(job_id, 1, 1_800_000_000.0, "INFO", "starting"),
            LogLine(job_id, 1, 1_800_000_001.0, "ERROR", "it broke"),
        ]
    )
    lines = ok(run(database_url, app, "log", str(job_id))).splitlines()
    assert lines == [
        "2027-01-15 08:00:00 [1] INFO    starting",
        "2027-01-15 08:00:01 [1] ERROR   it broke",
    ]
    ok(run(database_url, app, "log", str(job_id), "--output", str(tmp_path / "job.log")))
    assert (tmp_path / "job.log").read_text().splitlines() == lines
    assert ok(run(database_url, app, "log", str(job_id), "-o", "-")).splitlines() == lines


def test_log_to_a_file_in_a_missing_folder_says_to_create_it(
    database_url: str, app: str, tmp_path: Path
) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    target = tmp_path / "no" / "such" / "job.log"
    one_clear_line(
        run(database_url, app, "log", str(job_id), "-o", str(target)),
        f"-o {str(target)!r} cannot be written: its folder {str(target.parent)!r} does not "
        "exist; create it or choose another path",
    )
    assert not (tmp_path / "no").exists()


@pytest.mark.timeout(60)
def test_ctrl_c_stops_log_follow_quietly_with_status_130(
    database_url: str, app: str, reader: Engine, tmp_path: Path
) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")  # stays PENDING
    reader.store.logs.append([LogLine(job_id, 1, 1_800_000_000.0, "INFO", "starting")])
    environment = {**os.environ, "JOBENGINE_DATABASE_URL": database_url}
    environment.pop("JOBENGINE_APP", None)
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "log", str(job_id), "--follow"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed inside the follow loop: Ctrl-C lands there
        assert first.rstrip("\n") == "2027-01-15 08:00:00 [1] INFO    starting"
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert (rest, errors) == ("", "")  # no "Aborted!", no traceback


# -- help ----------------------------------------------------------------------------------------


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_option_shows_its_env_var_and_default_in_help() -> None:
    runner = CliRunner()
    for path in [(), *commands(main)]:
        help_text = runner.invoke(main, [*path, "--help"], terminal_width=200).output
        context = click.Context(main)
        command: click.Command = main
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        for option in command.params:
            if not isinstance(option, click.Option) or option.name == "help":
                continue
            record = option.get_help_record(context)
            assert record is not None
            described = " ".join(record[1].split())
            assert " ".join(described.split()[:3]) in " ".join(help_text.split())
            if option.envvar:
                assert f"env var: {option.envvar}" in described, (path, option.name)
            default = option.get_default(context, call=False)
            if default not in (None, False, (), UNSET) and not option.is_flag:
                assert "default" in described, (path, option.name)
    submit_help = " ".join(runner.invoke(main, ["submit", "--help"]).output.split())
    for option in ("--priority", "--queue", "--timeout", "--in", "--at"):
        described = submit_help.split(option, 1)[1].split(" --", 1)[0]
        assert "default" in described, option
