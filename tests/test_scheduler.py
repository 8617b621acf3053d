"""Recurring schedules on both backends: firing, policies, sync, daylight saving, bad input."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobengine import (
    ConfigurationError,
    Engine,
    InvalidArguments,
    InvalidSchedule,
    JobNotFound,
    ManualClock,
    Status,
    UnknownJobType,
)
from jobengine.store import Move

pytestmark = pytest.mark.timeout(60)
BERLIN = ZoneInfo("Europe/Berlin")
START = 1_800_000_000.0  # the ManualClock's start: a whole multiple of five minutes
HOUR = 3600.0


@pytest.fixture
def engines(database_url: str, clock: ManualClock) -> Iterator[Callable[..., Engine]]:
    """Open more engines on the test's database (with `report` defined in code, if asked)."""
    opened: list[Engine] = []

    def open_engine(expression: str | None = None) -> Engine:
        engine = Engine(database_url, clock=clock)
        engine.job(name="noop")(lambda: None)
        if expression:

            @engine.recurring(expression, tz="Europe/Berlin", arguments={"region": "eu"})
            def report(region: str) -> str:
                return region

        opened.append(engine)
        return engine

    yield open_engine
    for engine in opened:
        engine.close()


def fire_times(engine: Engine, name: str) -> list[float]:
    with engine.store.database.transaction(write=False) as transaction:
        rows = transaction.execute(
            "SELECT fire_time FROM jobs WHERE schedule = ? ORDER BY fire_time", (name,)
        )
    return [row["fire_time"] for row in rows]


def count(engine: Engine, table: str) -> int:
    with engine.store.database.transaction(write=False) as transaction:
        return int(transaction.execute(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def tick_until(engine: Engine, clock: ManualClock, end: float, step: float = 60) -> list[int]:
    inserted = []
    while clock.now() <= end:
        inserted += engine.schedules.tick(clock.now())
        clock.advance(step)
    return inserted


def start_running(engine: Engine, job_id: int) -> None:
    """Make a run 'still going': claimed by a worker and started."""
    now = engine.clock.now()
    claimed = engine.store.jobs.claim("worker-1", [], 100, now)
    job = next(job for job in claimed if job.id == job_id)
    start = Move(job.id, job.attempt, Status.QUEUED, Status.RUNNING, "start", "worker-1")
    engine.store.jobs.move(start, now)


def finish(engine: Engine, job_id: int) -> None:
    job = engine.get(job_id)
    done = Move(job.id, job.attempt, Status.RUNNING, Status.SUCCESS, "finish", "worker-1")
    engine.store.jobs.move(done, engine.clock.now())


# -- firing ---------------------------------------------------------------------------------------


def test_every_five_minutes_fires_288_jobs_in_a_simulated_day(
    engine: Engine, clock: ManualClock
) -> None:
    engine.schedules.add("five", "add", "*/5 * * * *", arguments={"a": 1, "b": 2})
    inserted = tick_until(engine, clock, START + 24 * HOUR - 60)
    assert len(inserted) == 288
    assert fire_times(engine, "five") == [START + 300 * n for n in range(288)]
    jobs = [engine.get(job_id) for job_id in inserted[:3]]
    assert {(job.status, job.schedule, job.type) for job in jobs} == {
        (Status.PENDING, "five", "add")
    }
    assert jobs[0].args == {"a": 1, "b": 2}
    assert [job.run_at for job in jobs] == [job.fire_time for job in jobs]
    assert engine.events(inserted[0])[0].actor == "scheduler"
    schedule = engine.schedules.get("five")
    assert schedule.last_fire_time == START + 287 * 300
    assert schedule.next_fire_time == START + 24 * HOUR


def test_ticking_the_same_minute_again_fires_nothing(engine: Engine, clock: ManualClock) -> None:
    engine.schedules.add("minute", "add", every=60, arguments={"a": 1, "b": 1})
    assert len(engine.schedules.tick(START)) == 1
    assert engine.schedules.tick(START) == []
    assert engine.schedules.tick(START + 30) == []
    assert len(engine.schedules.tick(START + 60)) == 1


def test_runs_use_the_schedule_queue_and_priority_else_the_job_type_defaults(
    engine: Engine,
) -> None:
    engine.schedules.add("plain", "greet", every=60, arguments={"name": "Ada"})
    engine.schedules.add("urgent", "greet", every=60, arguments={"name": "Bo"}, queue="fast")
    engine.schedules.edit("urgent", priority=9)
    jobs = {engine.get(i).schedule: engine.get(i) for i in engine.schedules.tick(START)}
    assert (jobs["plain"].queue, jobs["plain"].priority, jobs["plain"].max_attempts) == (
        "mail",
        5,
        3,
    )
    assert (jobs["urgent"].queue, jobs["urgent"].priority) == ("fast", 9)


def test_concurrent_engines_ticking_at_once_fire_each_run_once(
    engines: Callable[..., Engine],
) -> None:
    tickers = [engines() for _ in range(4)]
    for number in range(20):
        tickers[0].schedules.add(f"s{number}", "noop", every=60)
    barrier = threading.Barrier(len(tickers))
    results: list[list[int]] = [[] for _ in tickers]

    def run(index: int) -> None:
        for minute in range(5):
            barrier.wait()
            results[index] += tickers[index].schedules.tick(START + 60 * minute)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tickers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fired = sorted(job_id for result in results for job_id in result)
    assert len(fired) == len(set(fired)) == 100
    assert count(tickers[0], "jobs") == 100


# -- missed runs ----------------------------------------------------------------------------------


def outage(engine: Engine, clock: ManualClock, missed: str, **options: object) -> list[float]:
    """A */5 schedule fires at START, then nobody ticks for 3 hours; return the fire times
    of the first tick after the outage (150 s after the run of START + 3 h)."""
    engine.schedules.add(
        "five", "add", "*/5 * * * *", arguments={"a": 1, "b": 2}, missed=missed, **options
    )
    assert len(engine.schedules.tick(START)) == 1
    clock.set(START + 3 * HOUR + 150)
    inserted = engine.schedules.tick(clock.now())
    return sorted(engine.get(job_id).fire_time or 0 for job_id in inserted)


def resumes_normally(engine: Engine, clock: ManualClock) -> None:
    clock.set(START + 3 * HOUR + 300)
    [job_id] = engine.schedules.tick(clock.now())
    assert engine.get(job_id).fire_time == START + 3 * HOUR + 300


def test_missed_skip_fires_none_of_the_late_runs(
    engine: Engine, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobengine.scheduler"):
        assert outage(engine, clock, "skip") == []
    assert "were late" in caplog.text
    assert engine.schedules.get("five").next_fire_time == START + 3 * HOUR + 300
    resumes_normally(engine, clock)
    assert len(fire_times(engine, "five")) == 2


def test_missed_once_fires_one_catch_up_run(engine: Engine, clock: ManualClock) -> None:
    assert outage(engine, clock, "once") == [START + 300]
    resumes_normally(engine, clock)
    assert len(fire_times(engine, "five")) == 3


def test_missed_all_fires_each_late_run_within_the_window(
    engine: Engine, clock: ManualClock
) -> None:
    expected = [START + 2 * HOUR + 300 * n for n in range(1, 13)]
    assert outage(engine, clock, "all") == expected
    resumes_normally(engine, clock)
    assert len(fire_times(engine, "five")) == 1 + 12 + 1


def test_missed_all_with_a_shorter_window(engine: Engine, clock: ManualClock) -> None:
    fired = outage(engine, clock, "all", missed_window=timedelta(minutes=30))
    assert fired == [START + 2.5 * HOUR + 300 * n for n in range(1, 7)]


def test_a_run_a_little_late_is_not_missed(engine: Engine, clock: ManualClock) -> None:
    engine.schedules.add("five", "add", "*/5 * * * *", arguments={"a": 1, "b": 2})
    engine.schedules.tick(START)
    assert len(engine.schedules.tick(START + 300 + 90)) == 1


# -- overlap --------------------------------------------------------------------------------------


def overlapping(engine: Engine, overlap: str) -> int:
    """A schedule every minute whose first run is still RUNNING one minute later."""
    engine.schedules.add("sync", "add", every=60, arguments={"a": 1, "b": 2}, overlap=overlap)
    [first] = engine.schedules.tick(START)
    start_running(engine, first)
    return first


def test_overlap_allow_fires_alongside_the_running_one(engine: Engine, clock: ManualClock) -> None:
    first = overlapping(engine, "allow")
    [second] = engine.schedules.tick(START + 60)
    assert engine.get(first).status is Status.RUNNING
    assert engine.get(second).status is Status.PENDING


def test_overlap_skip_waits_for_the_previous_run_to_end(engine: Engine, clock: ManualClock) -> None:
    first = overlapping(engine, "skip")
    clock.set(START + 60)
    assert engine.schedules.tick(START + 60) == []
    schedule = engine.schedules.get("sync")
    assert (schedule.last_fire_time, schedule.next_fire_time) == (START, START + 120)
    finish(engine, first)
    [second] = engine.schedules.tick(START + 120)
    assert engine.get(second).fire_time == START + 120
    # A run still PENDING (not claimed yet) has not ended either.
    assert engine.schedules.tick(START + 180) == []


def test_overlap_cancel_previous_cancels_then_fires(engine: Engine, clock: ManualClock) -> None:
    first = overlapping(engine, "cancel_previous")
    clock.set(START + 60)
    [second] = engine.schedules.tick(START + 60)
    assert engine.get(first).status is Status.TO_CANCEL
    assert engine.get(second).status is Status.PENDING
    clock.set(START + 120)
    [third] = engine.schedules.tick(START + 120)
    assert engine.get(second).status is Status.CANCELED
    assert engine.get(third).status is Status.PENDING
    cancel = engine.events(second)[-1]
    assert (cancel.verb, cancel.actor) == ("cancel", "scheduler")
    assert "cancel_previous" in (cancel.reason or "")


# -- daylight saving ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ((2026, 3, 28), ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]),
        ((2026, 10, 24), ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]),
    ],
    ids=["spring", "autumn"],
)
def test_0230_in_berlin_fires_once_per_day_across_daylight_saving(
    engine: Engine, clock: ManualClock, day: tuple[int, int, int], expected: list[str]
) -> None:
    noon = datetime(*day, 12, tzinfo=BERLIN).timestamp()
    clock.set(noon)
    engine.schedules.add(
        "nightly", "add", "30 2 * * *", tz="Europe/Berlin", arguments={"a": 1, "b": 2}
    )
    tick_until(engine, clock, noon + 48 * HOUR, step=300)
    local = [
        datetime.fromtimestamp(t, BERLIN).strftime("%Y-%m-%d %H:%M %Z")
        for t in fire_times(engine, "nightly")
    ]
    assert local == expected


# -- defined in code, synchronised ----------------------------------------------------------------


def test_sync_creates_code_schedules_once_from_any_number_of_engines(
    engines: Callable[..., Engine],
) -> None:
    for engine in [engines("*/5 * * * *") for _ in range(3)]:
        engine.schedules.sync()
        engine.schedules.sync()
    [schedule] = engine.schedules.list()
    assert (schedule.name, schedule.origin, schedule.timezone) == (
        "report",
        "code",
        "Europe/Berlin",
    )
    assert (schedule.args, schedule.next_fire_time) == ({"region": "eu"}, START)


def test_sync_updates_the_definition_but_keeps_an_operators_pause(
    engines: Callable[..., Engine], clock: ManualClock
) -> None:
    first = engines("*/5 * * * *")
    first.schedules.sync()
    first.schedules.pause("report")
    clock.advance(90)
    deployed = engines("0 * * * *")
    deployed.schedules.sync()
    schedule = deployed.schedules.get("report")
    assert (schedule.expression, schedule.enabled) == ("0 * * * *", False)
    deployed.schedules.resume("report")
    assert deployed.schedules.get("report").next_fire_time == START + HOUR


def test_an_edited_code_schedule_belongs_to_the_operator(engines: Callable[..., Engine]) -> None:
    engine = engines("*/5 * * * *")
    engine.schedules.sync()
    assert engine.schedules.edit("report", expression="0 3 * * *").origin == "runtime"
    engine.schedules.sync()
    assert engine.schedules.get("report").expression == "0 3 * * *"


def test_enabled_false_in_code_pauses(engines: Callable[..., Engine]) -> None:
    engine = engines()
    engine.schedule("quiet", "noop", "@daily", enabled=False)
    engine.schedules.sync()
    assert engine.schedules.get("quiet").enabled is False
    assert engine.schedules.tick(START + 2 * 86400) == []


def test_sync_writes_the_valid_definitions_and_reports_the_others(
    engines: Callable[..., Engine],
) -> None:
    engine = engines()
    engine.schedule("good", "noop", every=60)
    engine.schedule("orphan", "never_registered", every=60)
    with pytest.raises(InvalidSchedule, match="orphan: job type 'never_registered'"):
        engine.schedules.sync()
    assert [schedule.name for schedule in engine.schedules.list()] == ["good"]


# -- runtime API ----------------------------------------------------------------------------------


def test_pause_resume_run_now_remove(engine: Engine, clock: ManualClock) -> None:
    engine.schedules.add("five", "add", "*/5 * * * *", arguments={"a": 1, "b": 2})
    engine.schedules.pause("five")
    assert engine.schedules.tick(START + HOUR) == []
    clock.set(START + HOUR + 10)
    resumed = engine.schedules.resume("five")
    assert resumed.next_fire_time == START + HOUR + 300  # paused runs are not "missed"
    job_id = engine.schedules.run_now("five", actor="test")
    job = engine.get(job_id)
    assert (job.schedule, job.fire_time, job.status) == ("five", None, Status.PENDING)
    assert engine.schedules.runs("five")[0].job_id == job_id
    assert engine.schedules.next_fire_times("five", 3) == [
        START + HOUR + 300 * n for n in (1, 2, 3)
    ]
    engine.schedules.remove("five")
    assert engine.get(job_id).schedule == "five"  # history stays
    with pytest.raises(JobNotFound, match="no schedule is named 'five'"):
        engine.schedules.get("five")
    with pytest.raises(JobNotFound):
        engine.schedules.remove("five")


def test_a_schedule_nobody_ticks_shows_as_overdue(engine: Engine, clock: ManualClock) -> None:
    engine.schedules.add("five", "add", "*/5 * * * *", arguments={"a": 1, "b": 2})
    assert not engine.schedules.overdue(engine.schedules.get("five"))
    clock.advance(engine.schedules.grace + 1)
    assert engine.schedules.overdue(engine.schedules.get("five"))
    engine.schedules.tick(clock.now())
    assert not engine.schedules.overdue(engine.schedules.get("five"))


def test_edit_switches_between_cron_and_interval(engine: Engine, clock: ManualClock) -> None:
    engine.schedules.add("s", "add", "*/5 * * * *", arguments={"a": 1, "b": 2})
    interval = engine.schedules.edit("s", every=timedelta(hours=1))
    assert (interval.expression, interval.every) == (None, 3600)
    cron = engine.schedules.edit("s", expression="@hourly", tz="Asia/Tokyo")
    assert (cron.expression, cron.every, cron.timezone) == ("@hourly", None, "Asia/Tokyo")
    with pytest.raises(InvalidArguments):
        engine.schedules.edit("s", arguments={"a": 1})
    assert engine.schedules.get("s").args == {"a": 1, "b": 2}


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type", "expression", "options", "error", "fragment"),
    [
        ("add", "*/5 * * *", {}, InvalidSchedule, "has 4 field(s), not 5"),
        ("add", "61 * * * *", {}, InvalidSchedule, "minute field"),
        ("add", "* * * * *", {"tz": "Europe/Berln"}, InvalidSchedule, "unknown time zone"),
        ("nope", "* * * * *", {}, UnknownJobType, "job type 'nope' is not registered"),
        ("add", "* * * * *", {"arguments": {"a": 1}}, InvalidArguments, "do not fit"),
        ("add", "* * * * *", {"arguments": {"a": {1, 2}, "b": 1}}, InvalidArguments, "JSON"),
        ("add", "* * * * *", {"missed": "sometimes"}, InvalidSchedule, "use one of skip"),
        ("add", "* * * * *", {"overlap": "queue"}, InvalidSchedule, "use one of allow"),
        ("add", "* * * * *", {"timezone": "UTC"}, InvalidSchedule, "unknown option"),
        ("add", None, {}, InvalidSchedule, "exactly one"),
    ],
)
def test_bad_input_names_the_problem_and_stores_nothing(
    engine: Engine,
    type: str,
    expression: str | None,
    options: dict[str, object],
    error: type[Exception],
    fragment: str,
) -> None:
    with pytest.raises(error) as caught:
        engine.schedules.add("bad", type, expression, **options)
    assert fragment in str(caught.value)
    assert count(engine, "schedules") == 0


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("a/b", {}, "has spaces at an end or one of '/'"),
        (" a", {}, "has spaces at an end"),
        ("", {}, "schedule name must be non-empty text"),
        ("x" * 201, {}, "longer than 200 characters"),
        ("fine", {"priority": 2**31}, "schedule 'fine': priority=2147483648 does not fit"),
        ("fine", {"queue": "a,b"}, "schedule 'fine': queue 'a,b' has spaces at an end or one"),
    ],
    ids=str,
)
def test_a_bad_name_or_priority_is_refused_and_stores_nothing(
    engine: Engine, name: str, options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        engine.schedules.add(name, "add", every=60, arguments={"a": 1, "b": 2}, **options)
    assert fragment in str(caught.value)
    assert count(engine, "schedules") == 0


def test_listing_fire_times_and_runs_refuses_bad_counts(engine: Engine) -> None:
    engine.schedules.add("counted", "add", every=60, arguments={"a": 1, "b": 2})
    with pytest.raises(ConfigurationError, match="count=-1 does not fit"):
        engine.schedules.next_fire_times("counted", -1)
    with pytest.raises(ConfigurationError, match="limit must be a whole number, not 'x'"):
        engine.schedules.runs("counted", "x")  # type: ignore[arg-type]
    assert len(engine.schedules.next_fire_times("counted", 3)) == 3


def test_a_bad_code_definition_fails_at_definition_time(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule, match="minute field"):

        @engine.recurring("99 * * * *")
        def broken() -> None: ...

    assert "broken" not in engine.registry  # nor is its job type left registered
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        engine.schedule("broken", "add", "@daily", tz="Nowhere/Land", arguments={"a": 1, "b": 2})
    engine.schedules.sync()
    assert count(engine, "schedules") == 0


def test_adding_a_name_twice_is_refused(engine: Engine) -> None:
    engine.schedules.add("twice", "add", every=60, arguments={"a": 1, "b": 2})
    with pytest.raises(InvalidSchedule, match="exists already"):
        engine.schedules.add("twice", "add", every=120, arguments={"a": 1, "b": 2})
    assert engine.schedules.get("twice").every == 60
