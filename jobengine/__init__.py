"""jobengine: a background job engine. The public surface: Engine, Worker, Status and errors."""

from importlib.metadata import version

__version__ = version("jobengine")

from jobengine.clock import Clock, ManualClock, SystemClock
from jobengine.context import JobCanceled, JobContext, current_job
from jobengine.engine import Engine
from jobengine.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    IllegalMove,
    InvalidArguments,
    InvalidSchedule,
    JobEngineError,
    JobNotFound,
    MoveConflict,
    SchemaOutdated,
    UnknownJobType,
)
from jobengine.model import Event, Job, Status
from jobengine.settings import Settings
from jobengine.worker import Worker

__all__ = [
    "Clock",
    "ConfigurationError",
    "DatabaseUnavailable",
    "Engine",
    "Event",
    "IllegalMove",
    "InvalidArguments",
    "InvalidSchedule",
    "Job",
    "JobCanceled",
    "JobContext",
    "JobEngineError",
    "JobNotFound",
    "ManualClock",
    "MoveConflict",
    "SchemaOutdated",
    "Settings",
    "Status",
    "SystemClock",
    "UnknownJobType",
    "Worker",
    "current_job",
]
