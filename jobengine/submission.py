"""A submit's options checked and turned into a NewJob; nothing here reads or writes storage."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobengine.errors import ConfigurationError, InvalidArguments
from jobengine.limits import attempts, number, priority, queue_name, timeout, whole
from jobengine.model import NewJob
from jobengine.registry import JobType

LATEST_TIME = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC, the last moment a date can show


@dataclass(frozen=True)
class Options:
    """The options of a submit that are the same for every job it makes."""

    run_at: datetime | float | None
    delay: timedelta | float | None
    priority: int | None
    queue: str | None
    parent: int | None
    timeout: float | None
    max_attempts: int | None


def new_job(
    job_type: JobType, options: Options, values: dict[str, Any] | None, now: Callable[[], float]
) -> NewJob:
    """A checked job of `job_type` (arguments checked unless `values` is None); `now` is read
    only once everything else is checked."""
    return NewJob(
        type=job_type.name,
        args="{}" if values is None else job_type.encode_arguments(values),
        queue=job_type.queue if options.queue is None else queue_name(options.queue),
        priority=job_type.priority if options.priority is None else priority(options.priority),
        run_at=run_at(options.run_at, options.delay, now),
        max_attempts=job_type.max_attempts
        if options.max_attempts is None
        else attempts(options.max_attempts),
        timeout=job_type.timeout if options.timeout is None else timeout(options.timeout),
        parent=None if options.parent is None else whole("parent", options.parent, 1),
    )


def many_arguments(job_type: JobType, arguments: Any) -> list[str]:
    """Each dict of `arguments` (a list or another iterable of dicts) as checked JSON; an
    error names the item it found wrong."""
    if isinstance(arguments, dict | str | bytes) or not hasattr(arguments, "__iter__"):
        raise InvalidArguments(
            f"submit_many takes a list of argument dicts, one per job, not a "
            f"{type(arguments).__name__}"
        )
    encoded = []
    for index, values in enumerate(arguments):
        try:
            encoded.append(job_type.encode_arguments(values))
        except InvalidArguments as error:
            raise InvalidArguments(f"submit_many, item {index}: {error}") from None
    return encoded


def run_at(
    moment: datetime | float | None, delay: timedelta | float | None, now: Callable[[], float]
) -> float:
    """When a job is due: at `moment`, or `delay` after `now`, or now."""
    if moment is not None and delay is not None:
        raise ConfigurationError("give run_at or delay, not both")
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ConfigurationError(
                "run_at must be time-zone aware (e.g. datetime.now(timezone.utc))"
            )
        due = moment.timestamp()
    elif moment is not None:
        due = number("run_at", moment, "seconds since the epoch or an aware datetime")
    elif isinstance(delay, timedelta):
        due = now() + delay.total_seconds()
    else:
        due = now() + number("delay", delay or 0, "a number of seconds")
    return in_time_range(due)


def in_time_range(moment: float) -> float:
    """`moment` (from run_at, or now + delay) if it lies between 1970 and 9999."""
    if not math.isfinite(moment):
        raise ConfigurationError(
            f"run_at must be a finite time (seconds since the epoch or an aware datetime, or "
            f"now plus a finite delay), not {moment!r}"
        )
    if not 0 <= moment <= LATEST_TIME:
        raise ConfigurationError(
            f"run_at lies before 1970-01-01 or after 9999-12-31 UTC ({moment:.0f} seconds since "
            "the epoch); give a time or a delay that lands between them"
        )
    return moment
