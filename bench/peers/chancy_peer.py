"""Chancy in its fastest documented configuration: the asyncio executor with async jobs,
concurrency 50 per worker, eager polling (claim again as soon as a slot frees), NOTIFY on push
(its default), its default plugins (leadership, pruner, recovery, metrics, workflows).

Finished jobs stay in `chancy_jobs` as 'succeeded' until its pruner removes those older than a
day (its default rule); their state reaches the table in batches, once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.peers.common import Config, main, record_stamp

QUEUE = "bench"
CONCURRENCY = 50
MODULE = "bench.peers.chancy_peer"


async def noop() -> None:
    return None


async def stamp(t: float) -> None:
    record_stamp(t)


def _chancy(url: str) -> Any:
    import logging

    from chancy import Chancy

    return Chancy(url, log=logging.getLogger("bench.chancy"))


def _job(func: str, **kwargs: Any) -> Any:
    from chancy import Job

    return Job(func=f"{MODULE}.{func}", queue=QUEUE, kwargs=kwargs)


async def _execute(url: str, *statements: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        for statement in statements:
            await connection.execute(statement)  # type: ignore[arg-type]


class ChancyPeer:
    name = "Chancy"
    remaining_sql = (
        "SELECT count(*) FROM chancy_jobs WHERE state IN ('pending', 'running', 'retrying')"
    )
    last_finish_sql = "SELECT extract(epoch FROM max(completed_at)) FROM chancy_jobs"

    def setup(self, config: Config) -> None:
        from chancy import Chancy, Queue

        async def setup() -> None:
            async with _chancy(config.url) as chancy:
                await chancy.migrate()
                queue = Queue(
                    name=QUEUE,
                    concurrency=CONCURRENCY,
                    executor=Chancy.Executor.Async,
                    polling_interval=1,
                    eager_polling=True,
                )
                await chancy.declare(queue, upsert=True)

        asyncio.run(setup())

    def reset(self, config: Config) -> None:
        asyncio.run(_execute(config.url, "TRUNCATE chancy_jobs CASCADE"))

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        async def enqueue() -> float:
            async with _chancy(config.url) as chancy:
                await chancy.push(_job("noop"))  # warm: a connection of the pool open
                began = time.perf_counter()
                if batch == 1:
                    for _ in range(count):
                        await chancy.push(_job("noop"))
                else:
                    async for _ in chancy.push_many(
                        [_job("noop") for _ in range(count)], batch_size=batch
                    ):
                        pass
                return time.perf_counter() - began

        return asyncio.run(enqueue())

    def fill(self, config: Config, count: int) -> float:
        async def fill() -> float:
            async with _chancy(config.url) as chancy:
                jobs = [_job("noop") for _ in range(count)]
                async for _ in chancy.push_many(jobs, batch_size=count):
                    pass  # it commits when asked for the next batch, so time it after the loop
                return time.time()

        return asyncio.run(fill())

    def history(self, config: Config, count: int) -> None:
        at = "now() - interval '1 minute'"
        asyncio.run(
            _execute(
                config.url,
                "INSERT INTO chancy_jobs (id, queue, func, state, attempts, created_at,"
                " started_at, completed_at, scheduled_at) SELECT gen_random_uuid(),"
                f" '{QUEUE}', '{MODULE}.noop', 'succeeded', 1, {at}, {at}, {at}, {at}"
                f" FROM generate_series(1, {count})",
                "ANALYZE",
            )
        )

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        from chancy import Worker

        async def work() -> None:
            async with _chancy(config.url) as chancy, Worker(chancy) as worker:
                for _ in range(200):  # until its executor for the queue runs (it polls for it)
                    if QUEUE in worker._executors:
                        break
                    await asyncio.sleep(0.05)
                ready()
                await worker.wait_for_shutdown()

        asyncio.run(work())

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        async def submit() -> None:
            async with _chancy(config.url) as chancy:
                for gap in gaps:
                    await chancy.push(_job("stamp", t=time.time()))
                    await asyncio.sleep(gap)

        asyncio.run(submit())


PEER = ChancyPeer()

if __name__ == "__main__":
    main(PEER, MODULE)
