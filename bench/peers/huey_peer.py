"""Huey on SQLite, the embedded peer: each worker process is a Huey consumer with 2 thread
workers polling every 10 ms without back-off (its fastest documented polling settings), no
periodic-task scheduler, WAL (its default) and `synchronous=NORMAL` like jobengine's (Huey's
default leaves SQLite's FULL). Huey has no bulk enqueue.

Huey deletes a task from its queue when a worker takes it, and keeps a result only when the
task returns one (a no-op returns None): it keeps no finished jobs, so it has no history row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.peers.common import Config, main, record_stamp

THREADS = 2  # worker threads per consumer process (2 was faster than 1, 4 or 8)
POLL_DELAY = 0.01  # seconds between polls of an empty queue (its default 0.1, backing off)


def _path(url: str) -> str:
    return url.split("///", 1)[1]


def _huey(url: str) -> Any:
    from huey import Huey
    from huey.storage import SqliteStorage

    class NormalSyncStorage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            connection = super()._create_connection()
            connection.execute("PRAGMA synchronous = NORMAL")
            return connection

    huey = Huey("bench", storage_class=NormalSyncStorage, filename=_path(url))

    @huey.task(name="noop")
    def noop() -> None:
        return None

    @huey.task(name="stamp")
    def stamp(t: float) -> None:
        record_stamp(t)

    huey.bench_tasks = {"noop": noop, "stamp": stamp}
    return huey


class HueyPeer:
    name = "Huey"
    keeps_finished = False
    remaining_sql = "SELECT count(*) FROM task"
    last_finish_sql = "SELECT NULL"  # it records no finish time: the poll that saw it empty

    def setup(self, config: Config) -> None:
        _huey(config.url).storage.close()

    def reset(self, config: Config) -> None:
        huey = _huey(config.url)
        huey.storage.flush_queue()
        huey.storage.flush_results()
        huey.storage.close()

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        if batch != 1:
            return None
        huey = _huey(config.url)
        noop = huey.bench_tasks["noop"]
        noop()  # warm: the connection open
        began = time.perf_counter()
        for _ in range(count):
            noop()
        return time.perf_counter() - began

    def fill(self, config: Config, count: int) -> float:
        """One transaction through its storage (a caller of Huey cannot do this)."""
        huey = _huey(config.url)
        message = huey.serialize_task(huey.bench_tasks["noop"].s())
        with huey.storage.db(commit=True) as cursor:
            cursor.executemany(
                "INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)",
                [(huey.name, message)] * count,
            )
        committed = time.time()
        huey.storage.close()
        return committed

    def history(self, config: Config, count: int) -> None:
        raise NotImplementedError("Huey keeps no finished jobs")

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        huey = _huey(config.url)
        consumer = huey.create_consumer(  # its own handlers: SIGTERM stops it
            workers=THREADS,
            worker_type="thread",
            initial_delay=POLL_DELAY,
            backoff=1.0,
            max_delay=POLL_DELAY,
            periodic=False,
        )
        ready()
        consumer.run()

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        stamp = _huey(config.url).bench_tasks["stamp"]
        for gap in gaps:
            stamp(time.time())
            time.sleep(gap)


PEER = HueyPeer()

if __name__ == "__main__":
    main(PEER, "bench.peers.huey_peer")
