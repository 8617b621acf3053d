"""Procrastinate 3.x in its fastest documented configuration: the async psycopg connector,
async tasks, LISTEN/NOTIFY on (its default), concurrency 50 per worker process.

Finished jobs stay in `procrastinate_jobs` as 'succeeded' (its default `delete_jobs="never"`),
each with its events ('deferred', 'started', 'succeeded') in `procrastinate_events`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.peers.common import Config, main, record_stamp

CONCURRENCY = 50  # async jobs at once per worker (its default is 1; 50 was faster than 1 or 10)


def _app(url: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    @app.task(name="stamp")
    async def stamp(t: float) -> None:
        record_stamp(t)

    return app


async def _execute(url: str, *statements: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        for statement in statements:
            await connection.execute(statement)  # type: ignore[arg-type]


class ProcrastinatePeer:
    name = "Procrastinate"
    remaining_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    last_finish_sql = (
        "SELECT extract(epoch FROM max(at)) FROM procrastinate_events WHERE type = 'succeeded'"
    )

    def setup(self, config: Config) -> None:
        async def setup() -> None:
            app = _app(config.url)
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

        asyncio.run(setup())

    def reset(self, config: Config) -> None:
        asyncio.run(_execute(config.url, "TRUNCATE procrastinate_jobs CASCADE"))

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        async def enqueue() -> float:
            app = _app(config.url)
            async with app.open_async():
                noop = app.tasks["noop"]
                await noop.defer_async()  # warm: a connection of the pool open
                began = time.perf_counter()
                if batch == 1:
                    for _ in range(count):
                        await noop.defer_async()
                else:
                    for start in range(0, count, batch):
                        await noop.batch_defer_async(*[{}] * min(batch, count - start))
                return time.perf_counter() - began

        return asyncio.run(enqueue())

    def fill(self, config: Config, count: int) -> float:
        async def fill() -> float:
            app = _app(config.url)
            async with app.open_async():
                await app.tasks["noop"].batch_defer_async(*[{}] * count)
                return time.time()

        return asyncio.run(fill())

    def history(self, config: Config, count: int) -> None:
        moments = "now() - interval '1 minute'"
        asyncio.run(
            _execute(
                config.url,
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts)"
                " SELECT 'default', 'noop', '{}', 'succeeded', 1"
                f" FROM generate_series(1, {count})",
                # the insert trigger wrote each 'deferred' event; the worker writes these two
                "INSERT INTO procrastinate_events (job_id, type, at) SELECT id, kind::"
                f"procrastinate_job_event_type, {moments} FROM procrastinate_jobs,"
                " (VALUES ('started'), ('succeeded')) AS kinds(kind)",
                "ANALYZE",
            )
        )

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        async def work() -> None:
            app = _app(config.url)
            async with app.open_async():
                asyncio.get_running_loop().call_soon(ready)
                await app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=True)

        asyncio.run(work())

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        async def submit() -> None:
            app = _app(config.url)
            async with app.open_async():
                stamp = app.tasks["stamp"]
                for gap in gaps:
                    await stamp.defer_async(t=time.time())
                    await asyncio.sleep(gap)

        asyncio.run(submit())


PEER = ProcrastinatePeer()

if __name__ == "__main__":
    main(PEER, "bench.peers.procrastinate_peer")
