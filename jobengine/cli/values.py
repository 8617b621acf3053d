"""Reading command-line values: ids, priorities, durations, times, intervals and job arguments.

Each is checked where it is typed, so a bad value is one line naming the option and the fix,
and nothing reaches the database that it cannot store or a calendar cannot show.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from jobengine.errors import ConfigurationError
from jobengine.limits import INTEGER_MAX, INTEGER_MIN, WHOLE_MAX
from jobengine.submission import LATEST_TIME

LONGEST = 36_500 * 86_400.0  # 100 years: the longest delay, timeout or interval
LONGEST_TEXT = "36500d (100 years)"
LONGEST_WAIT = 30 * 86_400.0  # a worker's intervals and graces: 30 days at most
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_HELP = "write e.g. 30s, 10m, 1h30m or 2d"
if TYPE_CHECKING:  # click 8.2 and later type their parameter types; older ones are not generic
    IntType = click.ParamType[int]
    FloatType = click.ParamType[float]
else:
    IntType = FloatType = click.ParamType


class WholeNumber(IntType):
    """A whole number between `minimum` and `maximum`, refused with what the range is for."""

    name = "integer"

    def __init__(self, minimum: int, maximum: int, what: str) -> None:
        self.minimum, self.maximum, self.what = minimum, maximum, what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[+-]?\d+", text):
                self.fail(
                    f"{shorten(text)!r} is not a whole number; {self.range_text()}", param, ctx
                )
            if len(text.lstrip("+-")) > 30:  # beyond any range here; int() of it is wasted work
                self.fail(f"{shorten(text)} is out of range; {self.range_text()}", param, ctx)
            number = int(text)
        if not self.minimum <= number <= self.maximum:
            self.fail(f"{shorten(str(number))} is out of range; {self.range_text()}", param, ctx)
        return number

    def range_text(self) -> str:
        return f"{self.what} are whole numbers from {self.minimum} to {self.maximum}"


class Count(click.IntRange):
    """A whole number that --help shows with its range as click does (1<=x<=1000), refused in
    the words of WholeNumber: 'abc' is not a whole number; worker counts are ..."""

    def __init__(self, minimum: int, maximum: int, what: str) -> None:
        super().__init__(minimum, maximum)
        self.whole = WholeNumber(minimum, maximum, what)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return self.whole.convert(value, param, ctx)


JOB_ID = WholeNumber(1, WHOLE_MAX, "job ids")
PRIORITY = WholeNumber(INTEGER_MIN, INTEGER_MAX, "priorities")  # PostgreSQL's INTEGER


class Seconds(FloatType):
    """A finite number of seconds above zero (or at least zero), at most 30 days."""

    name = "seconds"

    def __init__(self, zero_allowed: bool = False) -> None:
        self.zero_allowed = zero_allowed

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{shorten(str(value))!r} is not a number of seconds", param, ctx)
        lowest = "0 or more" if self.zero_allowed else "more than 0"
        too_low = seconds < 0 if self.zero_allowed else seconds <= 0
        if not math.isfinite(seconds) or too_low or seconds > LONGEST_WAIT:
            self.fail(
                f"{shorten(str(value))} is not a usable number of seconds; give a number "
                f"{lowest} and at most {LONGEST_WAIT:.0f} (30 days), e.g. 5 or 0.5",
                param,
                ctx,
            )
        return seconds


def shorten(text: str) -> str:
    """A value for a message: 20000 digits are not read, their count is."""
    return text if len(text) <= 32 else f"{text[:12]}... ({len(text)} characters)"


def parse_duration(text: str, option: str = "duration") -> float:
    """'90s', '10m', '1h30m', '2d' or plain seconds -> seconds (at most 100 years)."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    elif not cleaned or DURATION.sub("", cleaned):
        raise ConfigurationError(
            f"{option}: duration {shorten(text)!r} is not understood; {DURATION_HELP}"
        )
    else:
        seconds = sum(float(n) * UNIT_SECONDS[unit] for n, unit in DURATION.findall(cleaned))
    if not seconds <= LONGEST:  # also catches inf from a number too long for a float
        raise ConfigurationError(
            f"{option}: duration {shorten(text)!r} is too long; the longest is {LONGEST_TEXT}"
        )
    return seconds


def parse_at(text: str) -> float:
    """An ISO time (no offset: local time) between 1970 and 9999, as seconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"--at {shorten(text)!r} is not an ISO time; write e.g. 2026-12-01T09:30 or "
            "2026-12-01T09:30:00+01:00 (no offset means this machine's local time)"
        ) from None
    seconds = epoch_seconds(moment)
    if not 0 <= seconds <= LATEST_TIME:  # a fixed UTC bound: any local zone reaches it
        raise ConfigurationError(
            f"--at {shorten(text)!r} is out of range; give a time between 1970-01-01 and "
            "9999-12-31, e.g. 2026-12-01T09:30"
        )
    return seconds


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch (a time without offset is local time); -1 when out of reach."""
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (OverflowError, OSError, ValueError):
        pass  # at the ends of year 1 or 9999 a local offset steps out of datetime's range
    if moment.tzinfo is None:
        try:
            return time.mktime(moment.timetuple()) + moment.microsecond / 1_000_000
        except (OverflowError, OSError, ValueError):
            pass
    return -1.0  # a time the local zone cannot reach: out of range


def parse_arguments(pairs: tuple[str, ...], json_text: str | None) -> dict[str, Any]:
    """--json OBJECT, then each --arg KEY=VALUE on top (VALUE is JSON when it parses)."""
    arguments: dict[str, Any] = {}
    if json_text:
        try:
            arguments = json.loads(json_text)
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"--json is not valid JSON: {error}") from None
        except (ValueError, RecursionError) as error:
            raise ConfigurationError(f"--json cannot be read: {_json_problem(error)}") from None
        if not isinstance(arguments, dict):
            raise ConfigurationError('--json must be a JSON object, e.g. \'{"server": "web-1"}\'')
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--arg {shorten(pair)!r} must look like key=value")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
        except (ValueError, RecursionError) as error:
            raise ConfigurationError(f"--arg {key}: {_json_problem(error)}") from None
    return arguments


def _json_problem(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "it is nested too deeply; pass fewer levels of lists and objects"
    return f"{error}; pass the number as text, in quotes"
