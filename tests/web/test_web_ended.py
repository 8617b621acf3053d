"""The running count of ended jobs behind the Overview and /metrics: what a full count says."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from conftest import register_jobs
from starlette.testclient import TestClient

from jobengine import Engine, ManualClock, Status
from jobengine.store import Move
from jobengine.store.listing import JobQueries
from jobengine.web import WebConfig, create_app
from jobengine.web.ended import RECOUNT_SECONDS, SETTLED_AFTER, EndedJobs

START = 1_800_000_000.0  # a whole minute
ENDED = (Status.SUCCESS, Status.WARNING, Status.FAILURE, Status.CANCELED)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def timed_engine(database_url: str, clock: ManualClock) -> Iterator[Engine]:
    engine = register_jobs(Engine(database_url, clock=clock))
    yield engine
    engine.close()


def end_job(engine: Engine, status: Status, finished: float, ran: float = 2.0) -> int:
    """A new job that ran `ran` seconds and ended `status` at `finished` (CANCELED: before it
    started)."""
    job_id = engine.submit("greet", name="x")
    jobs = engine.store.jobs
    if status is Status.CANCELED:
        changes = {"finished_at": finished, "cancel_requested_at": finished}
        jobs.move(Move(job_id, 1, Status.PENDING, status, "cancel", "t", None, changes), finished)
        return job_id
    started = finished - ran
    claim = {"worker": "w", "queued_at": started}
    jobs.move(Move(job_id, 1, Status.PENDING, Status.QUEUED, "claim", "t", None, claim), started)
    start = Move(
        job_id, 1, Status.QUEUED, Status.RUNNING, "start", "t", None, {"started_at": started}, "w"
    )
    jobs.move(start, started)
    finish = Move(
        job_id, 1, Status.RUNNING, status, "finish", "t", None, {"finished_at": finished}, "w"
    )
    jobs.move(finish, finished)
    return job_id


def full_count(engine: Engine) -> dict[Status, int]:
    found = engine.store.jobs.count_by_status()
    return {status: found.get(status, 0) for status in ENDED}


def test_totals_minutes_and_durations(timed_engine: Engine, clock: ManualClock) -> None:
    now = START + 3 * 3600
    end_job(timed_engine, Status.SUCCESS, START + 10)  # hours before the window
    end_job(timed_engine, Status.FAILURE, now - 30 * 60 + 5, ran=0.05)  # settled, in the window
    end_job(timed_engine, Status.WARNING, now - 30, ran=400)  # this minute: not settled yet
    end_job(timed_engine, Status.CANCELED, now - 1)
    timed_engine.submit("greet", name="waiting")
    ended = EndedJobs(JobQueries(timed_engine.store.database))
    reading = ended.read(now)
    assert reading.totals == full_count(timed_engine)
    assert [m.start for m in reading.minutes][-1] == now // 60 * 60
    assert len(reading.minutes) == 60
    by_minute = {m.start: m.statuses for m in reading.minutes if m.statuses}
    assert by_minute == {
        (now - 30 * 60) // 60 * 60: {Status.FAILURE: 1},
        now - 60: {Status.WARNING: 1, Status.CANCELED: 1},
    }
    at_most, count, seconds = reading.durations()
    assert (count, seconds) == (2, pytest.approx(400.05))  # the canceled job never ran
    assert at_most[:2] == [0, 1] and at_most[-3:] == [1, 2, 2]  # bounds 0.01, 0.1 ... 3600


def test_each_read_matches_a_full_count_as_time_goes_on(
    timed_engine: Engine, clock: ManualClock
) -> None:
    chance = random.Random(13)
    ended = EndedJobs(JobQueries(timed_engine.store.database))
    now = START
    for _ in range(40):
        now += chance.choice([1.0, 7.5, 45.0, 130.0, 600.0])
        for _ in range(chance.randrange(3)):
            end_job(timed_engine, chance.choice(ENDED), now - chance.uniform(0, 20))
        assert ended.read(now).totals == full_count(timed_engine), now - START


def test_an_outcome_written_late_counts_at_the_next_recount(
    timed_engine: Engine, clock: ManualClock
) -> None:
    ended = EndedJobs(JobQueries(timed_engine.store.database))
    now = START + 600
    assert ended.read(now).totals[Status.SUCCESS] == 0
    end_job(timed_engine, Status.SUCCESS, now - SETTLED_AFTER - 120)  # in a settled minute
    assert ended.read(now).totals[Status.SUCCESS] == 0
    end_job(timed_engine, Status.SUCCESS, now - 1)  # within the margin: counted at once
    assert ended.read(now + 1).totals[Status.SUCCESS] == 1
    assert ended.read(now + RECOUNT_SECONDS).totals[Status.SUCCESS] == 2


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_overview_and_metrics_agree_with_a_full_count(
    timed_engine: Engine, clock: ManualClock
) -> None:
    clock.set(START + 7200)
    for index, status in enumerate([*ENDED, Status.SUCCESS, Status.FAILURE]):
        end_job(timed_engine, status, START + index * 1200, ran=0.3)
    waiting = timed_engine.submit("greet", name="w")
    with TestClient(create_app(timed_engine, WebConfig()), base_url="http://127.0.0.1") as client:
        counts = client.get("/api/overview").json()["counts"]
        assert counts == {
            status.value: timed_engine.store.jobs.count_by_status().get(status, 0)
            for status in Status
        }
        text = client.get("/metrics").text
        assert metric(text, 'jobengine_jobs_ended_total{status="SUCCESS"}') == 2
        assert metric(text, 'jobengine_jobs_ended_total{status="CANCELED"}') == 1
        assert metric(text, 'jobengine_jobs{queue="default",status="PENDING"}') == 1
        # ended in the last hour: the jobs at 4800 s and 6000 s
        assert metric(text, 'jobengine_job_duration_seconds_bucket{le="0.5"}') == 2
        assert metric(text, "jobengine_job_duration_seconds_gcount") == 2
        overview = client.get("/").text
        shown = re.findall(
            r'<span class="number">(\d+)</span>\s*<span class="label">(\w+)<', overview
        )
        assert {label: int(number) for number, label in shown} == counts
    assert timed_engine.get(waiting).status is Status.PENDING
