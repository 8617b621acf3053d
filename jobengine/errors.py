"""One hierarchy of errors; every message names the problem and the fix."""

from __future__ import annotations


class JobEngineError(Exception):
    """Base of every error jobengine raises on purpose."""


class ConfigurationError(JobEngineError):
    """A setting, URL or option is wrong; the message says which and how to fix it."""


class DatabaseUnavailable(JobEngineError):
    """The database cannot be reached right now."""


class SchemaOutdated(JobEngineError):
    """The database schema is older (or newer) than this version of jobengine expects."""


class UnknownJobType(JobEngineError):
    """A job names a type that is not registered."""


class InvalidArguments(JobEngineError):
    """A job's arguments are not JSON or do not fit the job function."""


class InvalidSchedule(JobEngineError):
    """A cron expression, interval, time zone or policy is not valid."""


class JobNotFound(JobEngineError):
    """No job (or schedule, or worker) has the given id."""


class IllegalMove(JobEngineError):
    """A status change that the move table does not allow."""


class MoveConflict(JobEngineError):
    """A guarded move found the job no longer in the state it expected: it lost a race."""


def shown(value: object) -> str:
    """A value as an error message shows it: 20000 digits are not read, their count is."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for Python to write out
        return "a number of more than 4300 digits"
    return text if len(text) <= 32 else f"{text[:12]}... ({len(text)} characters)"
