"""The one JSON representation of a job, event, log line, schedule and worker; pure, no I/O.

The HTTP API and the CLI's `--json` both print these, so a script reads the same fields
whichever it asks. Times are RFC 3339 strings with their offset (UTC), durations are numbers of
seconds named `..._seconds`, and absent values are null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobengine.cron import Recurrence
from jobengine.errors import InvalidSchedule
from jobengine.model import Event, Job
from jobengine.store.logs import LogLine
from jobengine.store.schedules import Run, Schedule
from jobengine.store.workers import WorkerOverview

Representation = dict[str, Any]


def timestamp(moment: float | None) -> str | None:
    """Seconds since the epoch as RFC 3339 with its offset: '2026-01-31T09:21:58.125+00:00'.

    None for no time, and for a stored time no calendar can show (beyond the year 9999).
    """
    if moment is None:
        return None
    try:
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return None


def parse_timestamp(text: str) -> float:
    """An RFC 3339 time (offset required) as seconds since the epoch, or ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no offset; add one, e.g. {text}+00:00")
    return moment.timestamp()


def seconds_between(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def job(item: Job, url: str | None = None) -> Representation:
    """A job with every time, its durations so far, and its page URL when one is known."""
    started = item.started_at
    return {
        "id": item.id,
        "url": url,
        "type": item.type,
        "queue": item.queue,
        "priority": item.priority,
        "status": item.status.value,
        "terminal": item.status.terminal,
        "arguments": item.args,
        "attempt": item.attempt,
        "max_attempts": item.max_attempts,
        "timeout_seconds": item.timeout,
        "progress": item.progress,
        "worker": item.worker,
        "parent": item.parent,
        "rerun_of": item.rerun_of,
        "schedule": item.schedule,
        "fire_time": timestamp(item.fire_time),
        "created_at": timestamp(item.created_at),
        "run_at": timestamp(item.run_at),
        "queued_at": timestamp(item.queued_at),
        "started_at": timestamp(started),
        "finished_at": timestamp(item.finished_at),
        "heartbeat_at": timestamp(item.heartbeat),
        "cancel_requested_at": timestamp(item.cancel_requested_at),
        "waited_seconds": seconds_between(item.created_at, started),
        "ran_seconds": seconds_between(started, item.finished_at),
        "result": item.result,
        "output": item.output,
        "errors": item.errors,
    }


def event(item: Event) -> Representation:
    """One move of a job: when, from which status to which, by whom and why."""
    return {
        "id": item.id,
        "job_id": item.job_id,
        "at": timestamp(item.at),
        "verb": item.verb,
        "from_status": item.from_status.value if item.from_status else None,
        "to_status": item.to_status.value,
        "actor": item.actor,
        "reason": item.reason,
        "attempt": item.attempt,
    }


def log_line(item: LogLine) -> Representation:
    """One line of a job's own log; `id` is the cursor to read the lines after it."""
    return {
        "id": item.id,
        "job_id": item.job_id,
        "attempt": item.attempt,
        "at": timestamp(item.at),
        "level": item.level,
        "text": item.text,
    }


def run(item: Run | None) -> Representation | None:
    """A run a schedule fired (fire_time null for a run started by hand)."""
    if item is None:
        return None
    return {
        "job_id": item.job_id,
        "status": item.status.value,
        "fire_time": timestamp(item.fire_time),
        "created_at": timestamp(item.created_at),
        "finished_at": timestamp(item.finished_at),
    }


def describe_recurrence(item: Schedule) -> str:
    """The schedule's timing in plain English ('every 5 minutes', 'at 02:30 every day')."""
    try:
        return Recurrence(item.expression, item.every, item.timezone).describe()
    except InvalidSchedule:
        return item.expression or ""


def schedule(
    item: Schedule, next_fire_times: list[float] | None = None, last_run: Run | None = None
) -> Representation:
    """A schedule with its plain-English reading, its next fire times and its last run."""
    return {
        "name": item.name,
        "type": item.type,
        "arguments": item.args,
        "expression": item.expression,
        "every_seconds": item.every,
        "description": describe_recurrence(item),
        "timezone": item.timezone,
        "enabled": item.enabled,
        "missed": item.missed,
        "missed_window_seconds": item.missed_window,
        "overlap": item.overlap,
        "queue": item.queue,
        "priority": item.priority,
        "origin": item.origin,
        "last_fire_time": timestamp(item.last_fire_time),
        "next_fire_time": timestamp(item.next_fire_time),
        "next_fire_times": [timestamp(moment) for moment in next_fire_times or []],
        "last_run": run(last_run),
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
    }


def worker(item: WorkerOverview) -> Representation:
    """A worker as an operator sees it: its state (alive, draining, dead, stopped) and load."""
    record = item.record
    return {
        "id": record.id,
        "host": record.host,
        "pid": record.pid,
        "state": item.state,
        "queues": record.queues,
        "concurrency": record.concurrency,
        "running_jobs": item.running_jobs,
        "version": record.version,
        "started_at": timestamp(record.started_at),
        "heartbeat_at": timestamp(record.heartbeat),
        "stopped_at": timestamp(record.stopped_at),
        "age_seconds": item.age,
        "heartbeat_age_seconds": item.heartbeat_age,
        "request": record.request,
    }
