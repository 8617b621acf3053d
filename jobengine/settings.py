"""A worker's settings: capacity, queues, and the intervals and graces of its loop."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LOG_CAP = 10 * 1024 * 1024  # bytes of log one attempt of a job may write


@dataclass(frozen=True)
class Settings:
    concurrency: int = 10
    queues: tuple[str, ...] = ()
    poll_interval: float = 1.0
    heartbeat_interval: float = 5.0
    dead_after: float = 20.0
    shutdown_timeout: float = 30.0
    cancel_grace: float = 1.0
    kill_grace: float = 5.0
    schedule_interval: float = 60.0
    log_cap: int = DEFAULT_LOG_CAP
