"""PgQueuer 1.6 in its fastest documented configuration: asyncpg, uvloop, async entrypoints,
dequeue batches of 50, completions buffered (its default), tables logged (its default).

Finished jobs leave the queue table; each keeps two rows in `pgqueuer_log` ('queued' and
'successful'), folded into statistics every 30 s (aggregated, never deleted by default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.peers.common import Config, main, record_stamp

BATCH_SIZE = 50  # dequeued per query (its benchmark's knob; the default is 10)


async def _connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn=url)


async def _queries(url: str) -> Any:
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    return Queries(AsyncpgDriver(await _connect(url)))


def _run(coroutine: Any) -> Any:
    import uvloop

    return uvloop.run(coroutine)


class PgQueuerPeer:
    name = "PgQueuer"
    remaining_sql = "SELECT count(*) FROM pgqueuer"
    last_finish_sql = (
        "SELECT extract(epoch FROM max(created)) FROM pgqueuer_log WHERE status = 'successful'"
        " AND created > now() - interval '1 hour'"
    )

    def setup(self, config: Config) -> None:
        async def install() -> None:
            queries = await _queries(config.url)
            await queries.install()

        _run(install())

    def reset(self, config: Config) -> None:
        async def clear() -> None:
            connection = await _connect(config.url)
            await connection.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")
            await connection.close()

        _run(clear())

    def enqueue(self, config: Config, count: int, batch: int) -> float | None:
        async def enqueue() -> float:
            queries = await _queries(config.url)
            await queries.enqueue("noop", None)  # warm: connected, statements prepared
            began = time.perf_counter()
            if batch == 1:
                for _ in range(count):
                    await queries.enqueue("noop", None)
            else:
                for start in range(0, count, batch):
                    size = min(batch, count - start)
                    await queries.enqueue(["noop"] * size, [None] * size, [0] * size)
            return time.perf_counter() - began

        return float(_run(enqueue()))

    def fill(self, config: Config, count: int) -> float:
        async def fill() -> float:
            queries = await _queries(config.url)
            await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
            return time.time()

        return float(_run(fill()))

    def history(self, config: Config, count: int) -> None:
        async def history() -> None:
            connection = await _connect(config.url)
            for status in ("queued", "successful"):
                await connection.execute(
                    "INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint,"
                    " aggregated) SELECT now() - interval '1 minute', n, $1, 0, 'noop', TRUE"
                    " FROM generate_series(1, $2::bigint) AS n",
                    status,
                    count,
                )
            await connection.execute(
                "SELECT setval(pg_get_serial_sequence('pgqueuer', 'id'), $1::bigint)", count
            )
            await connection.execute("ANALYZE")
            await connection.close()

        _run(history())

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        import signal

        from pgqueuer import PgQueuer
        from pgqueuer.db import AsyncpgDriver

        async def work() -> None:
            pgq = PgQueuer(AsyncpgDriver(await _connect(config.url)))

            @pgq.entrypoint("noop")
            async def noop(job: Any) -> None:
                return None

            @pgq.entrypoint("stamp")
            async def stamp(job: Any) -> None:
                record_stamp(float(job.payload))

            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, pgq.shutdown.set)
            loop.call_soon(ready)
            await pgq.run(batch_size=BATCH_SIZE)

        _run(work())

    def submit_spaced(self, config: Config, gaps: list[float]) -> None:
        async def submit() -> None:
            queries = await _queries(config.url)
            for gap in gaps:
                await queries.enqueue("stamp", repr(time.time()).encode())
                await asyncio.sleep(gap)

        _run(submit())


PEER = PgQueuerPeer()

if __name__ == "__main__":
    main(PEER, "bench.peers.pgqueuer_peer")
