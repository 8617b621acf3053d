"""Jobs of a multi-host test: submitted in bulk, waited on, and which host holds them."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence

import psycopg
from host_cluster import Cluster
from host_machine import Host
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.model import TERMINAL


def submit_many(
    made: Cluster,
    count: int,
    job_type: str = "short",
    milliseconds_range: tuple[int, int] = (10, 500),
    **options: object,
) -> list[int]:
    """`count` jobs through the engine's public submit, in one transaction on PostgreSQL;
    `short` jobs sleep a random time in `milliseconds_range` unless `milliseconds` is given."""
    engine = made.engine
    queue = options.pop("queue", None)

    def one(connection: object = None) -> int:
        arguments = dict(options)
        if job_type == "short" and "milliseconds" not in arguments:
            arguments["milliseconds"] = random.randint(*milliseconds_range)
        return engine.submit(job_type, connection=connection, queue=queue, arguments=arguments)  # type: ignore[arg-type]

    if engine.store.database.dialect != "postgresql":
        return [one() for _ in range(count)]
    with psycopg.connect(engine.url) as connection, connection.transaction():
        ids = [one(connection) for _ in range(count)]
    engine.wake_workers()
    return ids


SUBMIT_ON_HOST = """
import json, sys
from jobengine import Engine
from {app} import register
engine = register(Engine({url!r}))
ids = [
    engine.submit({job_type!r}, queue={queue!r}, arguments={arguments!r}) for _ in range({count})
]
engine.close()
print(json.dumps(ids))
"""


def submit_from_host(
    made: Cluster, host: Host, count: int, job_type: str, queue: str | None, **arguments: object
) -> list[int]:
    """Submit from a process of `host` (its clock, its network), as an application there would."""
    code = SUBMIT_ON_HOST.format(
        app=made.app_name,
        url=made.host_url,
        job_type=job_type,
        queue=queue,
        arguments=arguments,
        count=count,
    )
    return [int(job_id) for job_id in json.loads(host.python(code))]


def unfinished(engine: Engine) -> int:
    """Jobs of the (test's own) database that are not terminal."""
    counts = engine.store.jobs.count_by_status()
    return sum(n for status, n in counts.items() if status not in TERMINAL)


def wait_terminal(engine: Engine, timeout: float) -> float:
    """Wait until every job has ended; the seconds it took."""
    started = time.monotonic()
    try:
        wait_for(lambda: unfinished(engine) == 0, timeout, "every job to end")
    except AssertionError as error:
        raise AssertionError(f"{error}; jobs by status now: {by_status(engine)}") from None
    return time.monotonic() - started


def finished_within(engine: Engine, timeout: float) -> float | None:
    """Seconds until every job has ended, or None if some have not after `timeout` (so that a
    test can still gather what the database shows before it fails)."""
    try:
        return wait_terminal(engine, timeout)
    except AssertionError:
        return None


def by_status(engine: Engine) -> dict[str, int]:
    return {str(status): n for status, n in engine.store.jobs.count_by_status().items()}


def host_of_workers(engine: Engine) -> dict[str, str]:
    """Worker id -> the host name its row gives, for every worker that ever registered."""
    return {row.id: row.host for row in engine.store.workers.find(include_stopped=True)}


def holders(engine: Engine, job_ids: Sequence[int]) -> dict[int, tuple[str, str | None, int]]:
    """Job -> (status, the host of the worker holding it or None, attempt)."""
    hosts = host_of_workers(engine)
    found = {}
    for job_id in job_ids:
        job = engine.get(job_id)
        host = hosts.get(job.worker) if job.worker else None
        found[job_id] = (str(job.status), host, job.attempt)
    return found


def wait_running_on(
    engine: Engine, job_ids: Sequence[int], host: Host, timeout: float = 30
) -> None:
    """Wait until every job of `job_ids` is RUNNING on `host`."""

    def running() -> bool:
        return all(
            status == Status.RUNNING and where == host.name
            for status, where, _ in holders(engine, job_ids).values()
        )

    try:
        wait_for(running, timeout, f"jobs {list(job_ids)} to run on {host.name}")
    except AssertionError as error:
        raise AssertionError(f"{error}; now: {holders(engine, job_ids)}") from None


def active_holders(engine: Engine, job_ids: Sequence[int]) -> dict[int, str]:
    """Job -> the id of the worker holding it, for the jobs of `job_ids` that are active."""
    found = {}
    for job_id in job_ids:
        job = engine.get(job_id)
        if job.status not in TERMINAL and job.status != Status.PENDING and job.worker:
            found[job_id] = job.worker
    return found


def wait_taken_from(
    engine: Engine, job_ids: Sequence[int], host: Host, timeout: float
) -> float | None:
    """Seconds until none of `job_ids` is held by `host` any more (released, retried, reaped,
    or run again elsewhere); None if some still are after `timeout`."""
    return _wait_until_none_held(
        engine, job_ids, lambda worker, hosts: hosts.get(worker) == host.name, timeout
    )


def wait_taken_from_worker(
    engine: Engine, job_ids: Sequence[int], worker: str, timeout: float
) -> float | None:
    """Seconds until no job of `job_ids` is held by the worker `worker`; None after `timeout`."""
    return _wait_until_none_held(engine, job_ids, lambda held_by, _: held_by == worker, timeout)


def _wait_until_none_held(
    engine: Engine,
    job_ids: Sequence[int],
    matches: Callable[[str, dict[str, str]], bool],
    timeout: float,
) -> float | None:
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        hosts = host_of_workers(engine)
        if not any(matches(worker, hosts) for worker in active_holders(engine, job_ids).values()):
            return time.monotonic() - started
        time.sleep(0.05)
    return None
