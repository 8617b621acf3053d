"""The one JSON representation: RFC 3339 times with offset, durations in seconds, all fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from jobengine import representation
from jobengine.model import Event, Job, Status
from jobengine.store.logs import LogLine
from jobengine.store.schedules import Run, Schedule
from jobengine.store.workers import WorkerOverview, WorkerRecord

MOMENT = datetime(2026, 1, 31, 9, 21, 58, 125000, tzinfo=UTC).timestamp()


def test_times_are_rfc3339_with_offset() -> None:
    assert representation.timestamp(MOMENT) == "2026-01-31T09:21:58.125+00:00"
    assert representation.timestamp(None) is None
    assert representation.timestamp(1e300) is None  # a broken row must not break a listing
    assert representation.parse_timestamp("2026-01-31T09:21:58.125Z") == MOMENT
    assert representation.parse_timestamp("2026-01-31T10:21:58.125+01:00") == MOMENT
    with pytest.raises(ValueError, match="offset"):
        representation.parse_timestamp("2026-01-31T09:21:58")


def test_a_job_with_its_durations() -> None:
    job = Job(
        id=7,
        type="greet",
        queue="mail",
        priority=2,
        status=Status.SUCCESS,
        args={"name": "x"},
        run_at=MOMENT,
        created_at=MOMENT,
        attempt=1,
        max_attempts=3,
        started_at=MOMENT + 1.5,
        finished_at=MOMENT + 4,
        result="ok",
    )
    data = representation.job(job, "https://jobs.example/jobs/7")
    assert data["url"] == "https://jobs.example/jobs/7"
    assert (data["status"], data["terminal"], data["arguments"]) == ("SUCCESS", True, {"name": "x"})
    assert (data["waited_seconds"], data["ran_seconds"]) == (1.5, 2.5)
    assert data["finished_at"] == "2026-01-31T09:22:02.125+00:00"
    assert data["queued_at"] is None
    json.dumps(data, allow_nan=False)


def test_event_log_line_schedule_and_worker() -> None:
    event = Event(1, 7, MOMENT, "submit", None, Status.PENDING, "api", None, 1)
    assert representation.event(event)["from_status"] is None
    assert representation.event(event)["at"].endswith("+00:00")
    line = representation.log_line(LogLine(7, 1, MOMENT, "INFO", "hello", 3))
    assert (line["id"], line["level"], line["text"]) == (3, "INFO", "hello")
    schedule = Schedule(
        "nightly", "greet", {}, "30 2 * * *", None, "UTC", True, "skip", 3600.0, "allow",
        None, None, "runtime", None, MOMENT, MOMENT, MOMENT,
    )  # fmt: skip
    run = Run(9, "nightly", Status.FAILURE, MOMENT, MOMENT, MOMENT, None)
    data = representation.schedule(schedule, [MOMENT], run)
    assert data["description"] == "at 02:30 every day"
    assert data["last_run"] == {
        "job_id": 9,
        "status": "FAILURE",
        "fire_time": "2026-01-31T09:21:58.125+00:00",
        "created_at": "2026-01-31T09:21:58.125+00:00",
        "finished_at": None,
    }
    record = WorkerRecord("h:1:a", "h", 1, MOMENT, MOMENT, ["mail"], 4, "0.1.0", "running")
    worker = representation.worker(WorkerOverview(record, 2, "alive", 10.0, 0.5))
    assert (worker["state"], worker["running_jobs"], worker["heartbeat_age_seconds"]) == (
        "alive",
        2,
        0.5,
    )
