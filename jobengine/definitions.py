"""Schedule definitions: the options a schedule takes, checked before anything is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from jobengine import limits
from jobengine.cron import MISSED_POLICIES, SKIP, Recurrence
from jobengine.errors import ConfigurationError, InvalidSchedule
from jobengine.store.schedules import Schedule

ALLOW, CANCEL_PREVIOUS = "allow", "cancel_previous"
OVERLAP_POLICIES = (ALLOW, SKIP, CANCEL_PREVIOUS)
CODE, RUNTIME = "code", "runtime"  # who defined a schedule: the application's code, an operator
OPTIONS = frozenset(
    {"tz", "every", "arguments", "missed", "missed_window", "overlap", "queue", "priority"}
)
TIMING = ("expression", "every", "timezone")
DEFINITION = ("type", "args", *TIMING, "missed", "missed_window", "overlap", "queue", "priority")
T = TypeVar("T")


@dataclass(frozen=True)
class Definition:
    """A schedule defined in code: written to the database by `sync()`."""

    type: str
    expression: str | None
    options: dict[str, Any]


def check_definition(
    name: str, type: str, expression: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    """A definition's column values, or an error naming the problem and the fix.

    The arguments are checked to be a dict here; whether they fit the job type is the
    scheduler's check (it knows the registry).
    """
    try:  # '/' would cut the dashboard's and the API's addresses of the schedule in two
        limits.name("schedule name", name, "name it like 'nightly-cleanup'", forbidden="/")
    except ConfigurationError as error:
        raise InvalidSchedule(str(error)) from None
    unknown = set(options) - OPTIONS - {"enabled"}
    if unknown:
        raise InvalidSchedule(
            f"schedule {name!r}: unknown option(s) {sorted(unknown)}; "
            f"use {sorted(OPTIONS | {'enabled'})} (job arguments go in arguments={{...}})"
        )
    recurrence = Recurrence.parse(expression, options.get("every"), options.get("tz"))
    arguments = options.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise InvalidSchedule(f"schedule {name!r}: arguments must be a dict of job arguments")
    return {
        "type": type,
        "args": arguments,
        "expression": recurrence.expression,
        "every": recurrence.every,
        "timezone": recurrence.timezone,
        "enabled": bool(options.get("enabled", True)),
        "missed": _choice(name, "missed", options.get("missed") or SKIP, MISSED_POLICIES),
        "missed_window": _window(name, options.get("missed_window", 3600.0)),
        "overlap": _choice(name, "overlap", options.get("overlap") or ALLOW, OVERLAP_POLICIES),
        "queue": _queue(name, options.get("queue") or None),
        "priority": _priority(name, options.get("priority")),
    }


def options_of(schedule: Schedule) -> dict[str, Any]:
    """A stored schedule as define()/add() options, to edit some of them."""
    options: dict[str, Any] = {
        "tz": schedule.timezone,
        "arguments": schedule.args,
        "missed": schedule.missed,
        "missed_window": schedule.missed_window,
        "overlap": schedule.overlap,
        "queue": schedule.queue,
        "priority": schedule.priority,
    }
    if schedule.every is not None:
        options["every"] = schedule.every
    return options


def _choice(name: str, option: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidSchedule(
            f"schedule {name!r}: {option}={value!r} is not a policy; "
            f"use one of {', '.join(allowed)}"
        )
    return str(value)


def _window(name: str, value: Any) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        raise InvalidSchedule(
            f"schedule {name!r}: missed_window={value!r} must be a positive number of seconds "
            "or a timedelta"
        )
    return float(seconds)


def _priority(name: str, value: Any) -> int | None:
    return None if value is None else _checked(name, limits.priority, value)


def _queue(name: str, value: Any) -> str | None:
    return None if value is None else _checked(name, limits.queue_name, value)


def _checked(name: str, check: Callable[[Any], T], value: Any) -> T:
    try:
        return check(value)
    except ConfigurationError as error:
        raise InvalidSchedule(f"schedule {name!r}: {error}") from None
