"""The SQLite backend's own settings: its page size, how often its log is copied back."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from itertools import accumulate
from pathlib import Path

from jobengine import Engine
from jobengine.model import Status
from jobengine.store.sqlite import (
    CHECKPOINT_PAGES,
    LONGEST_PAUSE,
    PAGE_SIZE,
    QUICK_PAUSE,
    QUICK_WAIT,
    lock_pause,
    sqlite_path,
)

ARGUMENT = "x" * 20_000  # ten pages a job: a batch of 100 adds about 1,000 pages to the log


def pages(path: str) -> int:
    return os.path.getsize(path) // PAGE_SIZE if os.path.exists(path) else 0


def page_size(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        size: int = connection.execute("PRAGMA page_size").fetchone()[0]
        return size


def wal_bytes_of_one_submit(engine: Engine, path: str) -> float:
    before = os.path.getsize(f"{path}-wal")
    for _ in range(20):
        engine.submit("noop")
    return (os.path.getsize(f"{path}-wal") - before) / 20


def test_a_new_file_gets_the_smaller_page_and_a_submit_writes_half_the_log(
    sqlite_url: str, tmp_path: Path
) -> None:
    old_path = str(tmp_path / "made-elsewhere.db")
    with contextlib.closing(sqlite3.connect(old_path)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")  # a file made at SQLite's default size
        connection.execute("CREATE TABLE made_before (id INTEGER PRIMARY KEY)")
    sizes, log_bytes = {}, {}
    for url in (sqlite_url, f"sqlite:///{old_path}"):
        engine = Engine(url)
        engine.job(name="noop")(lambda: None)
        try:
            engine.submit("noop")  # the schema made, the log started
            path = sqlite_path(url)
            sizes[url], log_bytes[url] = page_size(path), wal_bytes_of_one_submit(engine, path)
            assert engine.store.jobs.count_by_status() == {Status.PENDING: 21}  # works as before
        finally:
            engine.close()
    assert sizes == {sqlite_url: PAGE_SIZE, f"sqlite:///{old_path}": 4096}
    assert log_bytes[sqlite_url] < 0.6 * log_bytes[f"sqlite:///{old_path}"]


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


def test_a_writer_waiting_for_the_lock_tries_often_at_first_then_less_and_less_often() -> None:
    """Another worker holds the lock about 1 ms a turn: tries every 50 us for the first 5 ms
    take it soon after that commit; a long hold (a checkpoint, another program) is then tried
    at most every 1 ms, so a waiter does not spin for the whole busy timeout."""
    pauses, waited, pause = [], 0.0, QUICK_PAUSE
    while waited < 1.0:
        pauses.append(pause)
        waited += pause
        pause = lock_pause(pause, waited)

    quick = [
        pause for pause, end in zip(pauses, accumulate(pauses), strict=True) if end <= QUICK_WAIT
    ]
    assert quick == [QUICK_PAUSE] * len(quick) and len(quick) >= 90
    later = pauses[len(quick) :]
    assert later == sorted(later) and later[-1] == LONGEST_PAUSE
    assert len(pauses) < 1_100  # a second of waiting: about a thousand tries, not 20,000
