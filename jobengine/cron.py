"""When a schedule fires: cron expressions (through cronsim) or fixed intervals, in IANA zones."""

from __future__ import annotations

import difflib
import itertools
import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cronsim import CronSim, CronSimError

from jobengine.errors import InvalidSchedule, shown

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
CRON_HELP = (
    "write five fields 'minute hour day-of-month month day-of-week' (e.g. '*/5 * * * *' or "
    "'30 2 * * *') or one of @hourly, @daily, @weekly, @monthly, @yearly"
)
ZONE_HELP = "use an IANA time zone name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
LONGEST_INTERVAL = 36_500 * 86_400.0  # 100 years: fire times stay dates a calendar can show
MAX_SKIPS = 1000  # candidates a cron iterator may return at or before `moment` (DST folds)
UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
WORDS = {"d": "day", "h": "hour", "m": "minute", "s": "second"}
_VALIDATION_START = datetime(2000, 1, 1, tzinfo=UTC)
SKIP, ONCE, ALL = "skip", "once", "all"
MISSED_POLICIES = (SKIP, ONCE, ALL)


@cache
def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone an IANA name names, or InvalidSchedule naming the fix (and a close match)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), sorted(zoneinfo.available_timezones()), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InvalidSchedule(f"unknown time zone {name!r}{hint}; {ZONE_HELP}")


def interval_seconds(every: timedelta | float | int) -> float:
    """An interval as whole seconds (at least 1, at most 100 years), or InvalidSchedule."""
    if isinstance(every, timedelta):
        seconds = every.total_seconds()
    elif isinstance(every, int | float) and not isinstance(every, bool):
        try:
            seconds = float(every)
        except OverflowError:  # an int beyond any float
            seconds = math.inf if every > 0 else -math.inf
    else:
        raise InvalidSchedule(
            f"every={shown(every)} is not an interval; pass a timedelta or a number of seconds"
        )
    if seconds > LONGEST_INTERVAL:
        raise InvalidSchedule(
            f"every={shown(every)} is longer than 100 years ({format_duration(LONGEST_INTERVAL)});"
            " give a shorter interval, or a cron expression such as '0 0 1 1 *' for once a year"
        )
    if not math.isfinite(seconds) or seconds < 1 or seconds != int(seconds):
        raise InvalidSchedule(
            f"every={shown(every)} must be a whole number of seconds, at least 1 "
            "(e.g. timedelta(minutes=5) or 300)"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """300 -> '5m', 5400 -> '1h30m': the form `--every` reads."""
    return "".join(f"{count}{unit}" for unit, count in _in_units(seconds)) or "0s"


def _in_units(seconds: float) -> list[tuple[str, int]]:
    """Whole seconds as (unit, count) from days down, zero counts left out: 5400 -> h 1, m 30."""
    remaining, parts = int(seconds), []
    for unit, size in UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append((unit, count))
    return parts


def _cron_text(expression: str) -> str:
    """The five fields cronsim reads (aliases expanded), or InvalidSchedule."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise InvalidSchedule(f"cron expression {expression!r} is not valid; {CRON_HELP}")
        return ALIASES[text.lower()]
    fields = text.split(" ")
    if len(fields) != len(FIELDS):
        raise InvalidSchedule(
            f"cron expression {expression!r} has {len(fields)} field(s), not 5; {CRON_HELP}"
        )
    return text


def _never_fires(text: str) -> bool:
    """Whether each of the five fields is valid alone, the days too late for the months: cronsim
    refuses '0 0 31 2 *' with the same day-of-month error as '0 0 32 * *'."""
    minute, hour, day, month, weekday = text.split(" ")
    for fields in ((minute, hour, day, "*", weekday), (minute, hour, "*", month, weekday)):
        try:
            CronSim(" ".join(fields), _VALIDATION_START)
        except CronSimError:
            return False
    return True


@dataclass(frozen=True)
class Plan:
    """The runs one tick fires for one schedule, and the schedule's next fire time after it."""

    fire: list[float]
    next_fire_time: float | None
    late_from: float | None = None  # the first late run, when some were late


@dataclass(frozen=True)
class Recurrence:
    """The fire times of one schedule, as epoch seconds; build it with `Recurrence.parse`."""

    expression: str | None
    every: float | None
    timezone: str = "UTC"

    @classmethod
    def parse(
        cls,
        expression: str | None,
        every: timedelta | float | None = None,
        timezone: str | None = "UTC",
    ) -> Recurrence:
        """Validate and normalise; InvalidSchedule names the problem and its fix."""
        zone_name = timezone or "UTC"
        time_zone(zone_name)
        if (expression is None) == (every is None):
            raise InvalidSchedule(
                "give a cron expression or every= (an interval), exactly one of them; "
                "e.g. '*/5 * * * *' or every=timedelta(minutes=5)"
            )
        if every is not None:
            return cls(None, interval_seconds(every), zone_name)
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidSchedule(f"cron expression {expression!r} is empty; {CRON_HELP}")
        normalised = " ".join(expression.split())
        recurrence = cls(normalised, None, zone_name)
        recurrence._check()
        return recurrence

    def _check(self) -> None:
        text = _cron_text(self.expression or "")
        try:
            next(CronSim(text, _VALIDATION_START.astimezone(self.zone)))
        except CronSimError as error:
            if str(error) == "Bad day-of-month" and _never_fires(text):
                raise InvalidSchedule(
                    f"cron expression {self.expression!r} never fires (no month in it has that "
                    "day); give a day its months have (February 29 at most; April, June, "
                    "September and November 30) or L for each month's last day"
                ) from None
            field = str(error).removeprefix("Bad ").strip()
            problem = f"its {field} field is out of range or malformed" if field else str(error)
            raise InvalidSchedule(
                f"cron expression {self.expression!r} is not valid: {problem}; {CRON_HELP}"
            ) from None
        except StopIteration:
            raise InvalidSchedule(
                f"cron expression {self.expression!r} never fires; check its day and month"
            ) from None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return time_zone(self.timezone)

    @property
    def text(self) -> str:
        """The expression, or 'every 5m' for an interval."""
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return self.expression or ""

    def after(self, moment: float) -> float | None:
        """The first fire time strictly after `moment`; None if there is none (within 50 years)."""
        if self.every is not None:
            return _multiple(self.every, moment, strictly=True)
        start = datetime.fromtimestamp(moment, self.zone)
        iterator = CronSim(_cron_text(self.expression or ""), start)
        for _ in range(MAX_SKIPS):
            try:
                candidate = next(iterator).timestamp()
            except StopIteration:
                return None
            # Inside a repeated (autumn) hour cronsim can answer the first pass of a wall
            # time that already went by; such a run has fired once and must not fire again.
            if candidate > moment:
                return candidate
        return None

    def at_or_after(self, moment: float) -> float | None:
        """The first fire time at or after `moment`."""
        if self.every is not None:
            return _multiple(self.every, moment, strictly=False)
        return self.after(math.ceil(moment) - 1)

    def between(self, start: float, end: float) -> Iterator[float]:
        """Every fire time t with start <= t <= end, in order."""
        moment = self.at_or_after(start)
        while moment is not None and moment <= end:
            yield moment
            moment = self.after(moment)

    def upcoming(self, start: float, count: int) -> list[float]:
        """`count` fire times from `start` (included)."""
        return list(itertools.islice(self.between(start, math.inf), count))

    def plan(self, first: float, now: float, grace: float, missed: str, window: float) -> Plan:
        """The runs due at `now` from the pending fire time `first`, after the missed-run policy.

        A run is late when it is more than `grace` seconds overdue (no worker ticked in time):
        `skip` fires none of the late runs, `once` fires one catch-up run (with the fire time
        of the first late one), `all` fires each late run due within `window` of now. Pure:
        every worker computes the same plan from the same row.
        """
        on_time_from = now - grace
        start = max(first, now - max(window, grace)) if missed == ALL else max(first, on_time_from)
        fire = list(self.between(start, now))
        if missed == ONCE and first < start:
            fire.insert(0, first)
        late_from = first if first < on_time_from else None
        return Plan(fire, self.after(now), late_from)

    def describe(self) -> str:
        """A plain-English reading: 'every 5 minutes', 'at 02:30 every day'."""
        if self.every is not None:
            return describe_interval(self.every)
        return describe_cron(self.expression or "")


def _multiple(every: float, moment: float, strictly: bool) -> float:
    """The first multiple of `every` after (or at) `moment`, exact despite float rounding."""
    count = math.floor(moment / every)
    while count * every > moment or (strictly and count * every == moment):
        count -= 1
    while count * every < moment or (strictly and count * every == moment):
        count += 1
    return count * every


def describe_interval(seconds: float) -> str:
    parts = [
        f"{count} {WORDS[unit]}s" if count > 1 else f"1 {WORDS[unit]}"
        for unit, count in _in_units(seconds)
    ]
    if len(parts) == 1 and parts[0].startswith("1 "):
        return f"every {parts[0][2:]}"
    return "every " + " ".join(parts)


def describe_cron(expression: str) -> str:
    """Best effort: common shapes in our own words, else cronsim's reading, else the text."""
    try:
        text = _cron_text(expression)
    except InvalidSchedule:
        return expression
    minute, hour, day, month, weekday = text.split(" ")
    rest_is_any = (day, month, weekday) == ("*", "*", "*")
    if rest_is_any and hour == "*" and _step(minute):
        return f"every {_step(minute)} minutes"
    if rest_is_any and minute == "0" and _step(hour):
        return f"every {_step(hour)} hours"
    try:
        reading = str(CronSim(text, _VALIDATION_START).explain())
    except (CronSimError, StopIteration, ValueError, KeyError, IndexError):
        return expression
    return reading[:1].lower() + reading[1:] if reading else expression


def _step(field: str) -> str | None:
    """'*/5' -> '5' (steps above 1 only)."""
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) > 1:
        return field[2:]
    return None
