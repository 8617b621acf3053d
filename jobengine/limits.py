"""The values a job keeps, checked the same wherever they come from: numbers, names, actors."""

from __future__ import annotations

import math
from typing import Any

from jobengine.errors import ConfigurationError, shown

WHOLE_MIN, WHOLE_MAX = -(2**63), 2**63 - 1  # ids and counts: a BIGINT on every backend
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1  # priority, attempts: INTEGER on PostgreSQL
LONGEST_TIMEOUT = 36_500 * 86_400.0  # 100 years
LONGEST_NAME = 200  # characters of a queue name or an actor


def whole(name: str, value: Any, low: int = WHOLE_MIN, high: int = WHOLE_MAX) -> int:
    """`value` if it is an int from `low` to `high`, or ConfigurationError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a whole number, not {shown(value)}")
    if not low <= value <= high:
        bits = 32 if high == INTEGER_MAX else 64
        raise ConfigurationError(
            f"{name}={shown(value)} does not fit a {bits}-bit integer or is out of range; "
            f"use a whole number from {low} to {high}"
        )
    return int(value)


def priority(value: Any) -> int:
    return whole("priority", value, INTEGER_MIN, INTEGER_MAX)


def attempts(value: Any) -> int:
    if whole("max_attempts", value, high=INTEGER_MAX) < 1:
        raise ConfigurationError(f"max_attempts must be 1 or more, not {value!r}")
    return int(value)


def number(name: str, value: Any, what: str) -> float:
    """An int or float as a float (inf for an int beyond any float), or ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be {what}, not {shown(value)}")
    try:
        return float(value)
    except OverflowError:
        return math.inf


def timeout(value: Any) -> float:
    seconds = number("timeout", value, "a number of seconds")
    if not 0 < seconds <= LONGEST_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be a positive number of seconds, at most {LONGEST_TIMEOUT:.0f} "
            f"(100 years), not {shown(value)}"
        )
    return seconds


def name(what: str, value: Any, fix: str, forbidden: str = "") -> str:
    """Non-empty printable text of at most LONGEST_NAME characters, no spaces at its ends and
    none of `forbidden`; else ConfigurationError ending with `fix`."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be non-empty text, not {shown(value)}; {fix}")
    if len(value) > LONGEST_NAME:
        raise ConfigurationError(
            f"{what} {shown(value[:40])}... is longer than {LONGEST_NAME} characters; {fix}"
        )
    if value != value.strip() or any(character in value for character in forbidden):
        problem = "has spaces at an end" + (f" or one of {forbidden!r}" if forbidden else "")
        raise ConfigurationError(f"{what} {shown(value)} {problem}; {fix}")
    if not value.isprintable():
        raise ConfigurationError(f"{what} {shown(value)} has control characters; {fix}")
    return value


def queue_name(value: Any) -> str:
    # a worker is given its queues as a list `a,b`
    return name("queue", value, "name a queue such as 'default' or 'emails'", forbidden=",")


def actor(value: Any) -> str:
    return name("actor", value, "say who acts, such as 'cli:alice' or 'api'")
