"""Fire times of cron expressions and intervals, time zones, daylight saving and readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobengine.cron import ALL, ONCE, SKIP, Recurrence, format_duration
from jobengine.errors import InvalidSchedule

pytestmark = pytest.mark.timeout(30)
BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, zone: ZoneInfo | None = None) -> float:
    return datetime(*parts, tzinfo=zone or UTC).timestamp()  # type: ignore[misc]


def fires(recurrence: Recurrence, start: float, end: float) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in recurrence.between(start, end)]


def test_every_five_minutes_fires_288_times_a_day() -> None:
    every_five = Recurrence.parse("*/5 * * * *")
    start = at(2026, 6, 1)
    times = list(every_five.between(start, start + 86400 - 1))
    assert len(times) == 288
    assert times == [start + 300 * n for n in range(288)]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases_fire_like_their_five_fields(alias: str, expected: str) -> None:
    start = at(2026, 1, 1, 0, 0, 30)
    assert Recurrence.parse(alias).upcoming(start, 5) == Recurrence.parse(expected).upcoming(
        start, 5
    )


def test_after_is_strict_and_at_or_after_includes_the_moment() -> None:
    hourly = Recurrence.parse("0 * * * *")
    noon = at(2026, 6, 1, 12)
    assert hourly.after(noon) == noon + 3600
    assert hourly.at_or_after(noon) == noon
    assert hourly.at_or_after(noon + 0.5) == noon + 3600
    assert hourly.after(noon - 0.5) == noon


def test_intervals_are_aligned_to_the_epoch() -> None:
    five = Recurrence.parse(None, every=timedelta(minutes=5))
    assert five.every == 300
    assert five.at_or_after(1_000_000_100) == 1_000_000_200
    assert five.after(1_000_000_200) == 1_000_000_500
    assert list(five.between(1_000_000_200, 1_000_000_800)) == [
        1_000_000_200,
        1_000_000_500,
        1_000_000_800,
    ]
    assert Recurrence.parse(None, every=90).text == "every 1m30s"


@given(
    every=st.integers(min_value=1, max_value=10 * 86400),
    start=st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
@settings(max_examples=200, deadline=None)
def test_interval_fire_times_are_multiples_in_order(every: int, start: float) -> None:
    recurrence = Recurrence.parse(None, every=every)
    first = recurrence.at_or_after(start)
    assert first is not None and first >= start and first - every < start
    assert first % every == 0
    assert recurrence.after(first) == first + every


def test_spring_forward_the_skipped_0230_fires_once_at_0300_like_debian_cron() -> None:
    nightly = Recurrence.parse("30 2 * * *", timezone="Europe/Berlin")
    times = fires(nightly, at(2026, 3, 28, 12, zone=BERLIN), at(2026, 3, 30, 12, zone=BERLIN))
    local = [t.astimezone(BERLIN) for t in times]
    assert [t.strftime("%m-%d %H:%M %Z") for t in local] == ["03-29 03:00 CEST", "03-30 02:30 CEST"]
    assert times[0] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_fall_back_the_repeated_0230_fires_once_not_twice() -> None:
    nightly = Recurrence.parse("30 2 * * *", timezone="Europe/Berlin")
    times = fires(nightly, at(2026, 10, 24, 12, zone=BERLIN), at(2026, 10, 26, 12, zone=BERLIN))
    local = [t.astimezone(BERLIN) for t in times]
    assert [t.strftime("%m-%d %H:%M %Z") for t in local] == ["10-25 02:30 CEST", "10-26 02:30 CET"]
    # Asked from inside the second pass of the repeated hour, it does not fire again that day.
    second_pass = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN).timestamp()
    assert nightly.after(second_pass) == at(2026, 10, 26, 2, 30, zone=BERLIN)


@pytest.mark.parametrize(
    ("day", "hours"), [((2026, 3, 29), 23), ((2026, 10, 25), 25), ((2026, 6, 1), 24)]
)
def test_wildcard_hours_follow_real_time_on_daylight_saving_days(
    day: tuple[int, int, int], hours: int
) -> None:
    """Like Debian cron, jobs with '*' in the hour run by the clock: 23 or 25 hourly runs."""
    hourly = Recurrence.parse("0 * * * *", timezone="Europe/Berlin")
    start = at(*day, zone=BERLIN)
    end = at(*(datetime(*day) + timedelta(days=1)).timetuple()[:3], zone=BERLIN) - 1
    assert len(list(hourly.between(start, end))) == hours


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("*/5 * * *", "4 field(s), not 5"),
        ("0 0 * * * *", "6 field(s), not 5"),
        ("61 * * * *", "minute field"),
        ("0 24 * * *", "hour field"),
        ("0 0 32 * *", "day-of-month field"),
        ("0 0 * 13 *", "month field"),
        ("0 0 * * FUNDAY", "day-of-week field"),
        ("0 0 30 2 *", "never fires (no month in it has that day)"),
        ("0 0 31 4,6,9,11 *", "never fires (no month in it has that day)"),
        ("0 0 32 2 *", "day-of-month field"),
        ("0 0 31 13 *", "month field"),
        ("@reboot", "is not valid"),
        ("", "is empty"),
        ("every five minutes", "field(s), not 5"),
    ],
)
def test_bad_expressions_name_the_problem_and_the_fix(expression: str, fragment: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Recurrence.parse(expression)
    message = str(caught.value)
    assert fragment in message
    assert "five fields" in message or "is empty" in message or "never" in message


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30-31 2 *", "0 12 31 4,6 *"])
def test_a_day_no_month_of_the_expression_has_is_said_to_never_fire(expression: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Recurrence.parse(expression)
    message = str(caught.value)
    assert message.startswith(f"cron expression {expression!r} never fires (no month in it has")
    assert "out of range or malformed" not in message
    assert "February 29 at most" in message and "L for each month's last day" in message


@pytest.mark.parametrize("expression", ["0 0 29 2 *", "0 0 L 2 *", "0 0 31 2 1", "0 0 31 1-2 *"])
def test_a_day_some_month_of_the_expression_has_fires(expression: str) -> None:
    recurrence = Recurrence.parse(expression)
    assert recurrence.after(at(2026, 1, 1)) is not None


def test_unknown_time_zone_suggests_a_close_name() -> None:
    with pytest.raises(InvalidSchedule, match=r"unknown time zone 'Europe/Berln'.*Europe/Berlin"):
        Recurrence.parse("* * * * *", timezone="Europe/Berln")
    with pytest.raises(InvalidSchedule, match="IANA"):
        Recurrence.parse("* * * * *", timezone="Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("expression", "every", "fragment"),
    [
        (None, None, "exactly one"),
        ("* * * * *", 60, "exactly one"),
        (None, 0, "at least 1"),
        (None, 1.5, "whole number"),
        (None, timedelta(milliseconds=500), "whole number"),
        (None, "5m", "not an interval"),
    ],
)
def test_bad_intervals_name_the_fix(expression: str | None, every: object, fragment: str) -> None:
    with pytest.raises(InvalidSchedule, match=fragment):
        Recurrence.parse(expression, every=every)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "every", "reading"),
    [
        ("*/5 * * * *", None, "every 5 minutes"),
        ("30 2 * * *", None, "at 02:30 every day"),
        ("0 */6 * * *", None, "every 6 hours"),
        ("@hourly", None, "at the start of every hour"),
        ("15 9 * * MON-FRI", None, "at 09:15 on Monday through Friday"),
        (None, 300, "every 5 minutes"),
        (None, 3600, "every hour"),
        (None, 5400, "every 1 hour 30 minutes"),
        (None, 86400, "every day"),
    ],
)
def test_plain_english_reading(expression: str | None, every: int | None, reading: str) -> None:
    assert Recurrence.parse(expression, every=every).describe() == reading


def test_format_duration_reads_back_with_the_cli_syntax() -> None:
    assert [format_duration(s) for s in (45, 300, 5400, 90061)] == [
        "45s",
        "5m",
        "1h30m",
        "1d1h1m1s",
    ]


class TestPlan:
    """The missed-run policies, as pure arithmetic on fire times."""

    start = at(2026, 6, 1)
    every_five = Recurrence.parse("*/5 * * * *")
    outage_end = start + 3 * 3600 + 150  # 36 runs due, the newest 150 s late

    def plan(self, missed: str, now: float, window: float = 3600) -> list[float]:
        return self.every_five.plan(self.start + 300, now, 120, missed, window).fire

    def test_on_time_runs_fire_under_every_policy(self) -> None:
        for missed in (SKIP, ONCE, ALL):
            assert self.plan(missed, self.start + 300 + 30) == [self.start + 300]

    def test_skip_fires_no_late_run(self) -> None:
        plan = self.every_five.plan(self.start + 300, self.outage_end, 120, SKIP, 3600)
        assert plan.fire == []
        assert plan.late_from == self.start + 300
        assert plan.next_fire_time == self.start + 3 * 3600 + 300

    def test_once_fires_one_catch_up_run(self) -> None:
        assert self.plan(ONCE, self.outage_end) == [self.start + 300]

    def test_all_fires_each_late_run_within_the_window(self) -> None:
        hour = self.plan(ALL, self.outage_end)
        assert hour == [self.start + 2 * 3600 + 300 * n for n in range(1, 13)]
        assert len(self.plan(ALL, self.outage_end, window=1800)) == 6
