"""The CLI speaks like the dashboard: dates with their zone and ages, durations, never epoch
seconds; `workers` shows the job types each worker serves; --json is the API's representation."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from cli_steps import ok, run, submit
from waiting import wait_for, worker_thread

from jobengine import Engine, Status

pytestmark = pytest.mark.timeout(60)
EPOCH_SECONDS = re.compile(r"\b1[0-9]{9}(\.[0-9]+)?\b")  # what `show` printed before
UTC_DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def serving(engine: Engine) -> Engine:
    """The app's job types on `engine`, so that a worker in this process runs the CLI's jobs."""
    engine.job(lambda a, b: a + b, name="add")
    engine.job(lambda to, subject="hello", copies=1: to, name="send", queue="mail")
    return engine


def rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text} has no offset"
    return moment


def test_show_prints_dates_with_their_zone_and_ages_and_durations(
    database_url: str, app: str, reader: Engine
) -> None:
    done = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2", "--timeout", "90s")
    later = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2", "--in", "1h")
    with worker_thread(serving(reader)):
        wait_for(lambda: reader.get(done).status is Status.SUCCESS, 30, "the job to run")
    shown = ok(run(database_url, app, "show", str(done)))
    facts = shown.split("--- events ---")[0]
    assert not EPOCH_SECONDS.search(facts), facts
    assert re.search(rf"finished_at: {UTC_DATE} \((now|\d+(\.\d)? s ago)\)", facts), facts
    assert re.search(rf"heartbeat: {UTC_DATE} \(", facts), facts
    assert "timeout: 1 min 30 s" in facts and "attempt: 1 of 1" in facts
    assert re.search(r"ran for: \d+ ms", facts) and re.search(r"waited: ", facts), facts
    timeline = shown.split("--- events ---")[1]
    assert "time (UTC)" in timeline and not EPOCH_SECONDS.search(timeline)
    waiting = ok(run(database_url, app, "show", str(later)))
    assert re.search(rf"run_at: {UTC_DATE} \(in (59 min|1 h)", waiting), waiting
    data = json.loads(ok(run(database_url, app, "show", str(done), "--json")))
    assert rfc3339(data["finished_at"]) >= rfc3339(data["started_at"])
    assert data["timeout_seconds"] == 90 and data["arguments"] == data["args"] == {"a": 1, "b": 2}
    assert data["events"][-1]["verb"] == "finish"
    assert rfc3339(data["events"][-1]["at"]) >= rfc3339(data["started_at"])


def test_workers_shows_ages_and_the_types_each_serves(
    database_url: str, app: str, reader: Engine
) -> None:
    with worker_thread(serving(reader)) as worker:
        wait_for(lambda: reader.store.workers.find(), 30, "the worker to register")
        table = ok(run(database_url, app, "workers")).splitlines()
        listed = json.loads(ok(run(database_url, app, "workers", "--json")))
    header, line = table[0].split(), table[1]
    assert header == [
        "id",
        "host",
        "pid",
        "started",
        "age",
        "heartbeat",
        "running",
        "state",
        "types",
    ]
    assert line.startswith(worker.id) and line.rstrip().endswith("add, send"), line
    assert re.search(rf"{UTC_DATE}  +\d+(\.\d)? m?s  +(\d+(\.\d)? m?s ago|now)  ", line), line
    assert not EPOCH_SECONDS.search(line)
    [row] = listed
    assert (row["id"], row["types"], row["state"]) == (worker.id, ["add", "send"], "alive")
    assert rfc3339(row["heartbeat_at"]) >= rfc3339(row["started_at"])


def test_schedules_show_prints_times_in_the_schedules_zone_with_ages(
    database_url: str, app: str
) -> None:
    ok(
        run(
            database_url,
            app,
            "schedules",
            "add",
            "eu",
            "send",
            "--cron",
            "30 2 * * *",
            "--arg",
            "to=ada",
        )
    )
    ok(run(database_url, app, "schedules", "edit", "eu", "--tz", "Europe/Berlin"))
    shown = ok(run(database_url, app, "schedules", "show", "eu", "--next", "2"))
    assert re.search(r"next fire time: \d{4}-\d\d-\d\d 02:30 CES?T \(in ", shown), shown
    assert re.search(r"created: \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T \(", shown), shown  # no :00
    assert "missed window: 1 h" in shown
    assert not EPOCH_SECONDS.search(shown)
    fire_times = shown.split("--- next 2 fire times ---")[1].split("--- latest runs ---")[0].strip()
    assert fire_times.splitlines()[0].split() == ["local", "UTC", "when"]
    assert all(" in " in line for line in fire_times.splitlines()[1:] if line.strip())
    data = json.loads(ok(run(database_url, app, "schedules", "show", "eu", "--json")))
    assert data["description"] == data["reading"] == "at 02:30 every day"
    assert all(rfc3339(moment) for moment in data["next_fire_times"])
    assert data["runs"] == []


def test_show_prints_the_jobs_page_once_the_dashboards_address_is_set(
    database_url: str, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    monkeypatch.setenv("JOBENGINE_WEB_PUBLIC_URL", "https://jobs.example.test/")
    shown = ok(run(database_url, app, "show", str(job_id)))
    assert f"page: https://jobs.example.test/jobs/{job_id}" in shown
