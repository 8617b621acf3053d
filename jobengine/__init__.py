"""jobengine: a background job engine. The public surface: Engine, Status, Job and errors."""

from jobengine.clock import Clock, ManualClock, SystemClock
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

__version__ = "0.1.0"

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
    "JobEngineError",
    "JobNotFound",
    "ManualClock",
    "MoveConflict",
    "SchemaOutdated",
    "Status",
    "SystemClock",
    "UnknownJobType",
]
