"""Recurring schedules: define, store and fire them idempotently (built by the recurring work)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobengine.engine import Engine


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def define(self, name: str, type: str, expression: str | None = None, **options: Any) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        """Write the schedules defined in code to the database (called when a worker starts)."""

    def tick(self, now: float) -> list[int]:
        """Fire every due run; return the ids of the jobs inserted."""
        return []
