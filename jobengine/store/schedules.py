"""The schedules table (filled in by the recurring-jobs work)."""

from __future__ import annotations

from jobengine.store.database import Database


class ScheduleStore:
    def __init__(self, database: Database) -> None:
        self.database = database
