"""The SQLite backend's own settings: how often its write-ahead log is copied back."""

from __future__ import annotations

import os

from jobengine import Engine
from jobengine.store.sqlite import CHECKPOINT_PAGES

ARGUMENT = "x" * 20_000  # five pages a job: a batch of 100 adds about 500 pages to the log


def pages(path: str) -> int:
    return os.path.getsize(path) // 4096 if os.path.exists(path) else 0


def test_the_log_is_copied_back_past_ten_thousand_pages_not_a_thousand(sqlite_url: str) -> None:
    engine = Engine(sqlite_url)

    @engine.job
    def big(text: str) -> None: ...

    try:
        path = engine.store.database.path  # type: ignore[attr-defined]
        engine.submit("big", text="warm")
        before = pages(path)
        for _ in range(4):  # 2,000 pages: SQLite's default would have copied them back
            engine.submit_many("big", [{"text": ARGUMENT}] * 100)
        assert pages(f"{path}-wal") > 2_000, "the log was copied back before 10,000 pages"
        assert pages(path) == before
        for _ in range(2 * CHECKPOINT_PAGES // 500):  # bounded: twice the pages it needs
            if pages(path) > before + CHECKPOINT_PAGES / 2:
                break
            engine.submit_many("big", [{"text": ARGUMENT}] * 100)
        assert pages(path) > before + CHECKPOINT_PAGES / 2, "the log was never copied back"
        assert pages(f"{path}-wal") < CHECKPOINT_PAGES * 1.2, "the log kept growing"
    finally:
        engine.close()
