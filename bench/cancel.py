"""Cancel latency per kind of job, and what process isolation costs per job against threads."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

from bench.databases import backends, fresh_database
from bench.options import Options
from bench.report import Table
from jobengine import Engine, Status
from jobengine.worker import Settings, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import stopping_jobs

KINDS = [  # (label, job type, jobs running at once): how each is stopped is the point
    ("cooperative ctx.sleep, thread", "cooperative", 10),
    ("pure-Python busy loop, thread", "busy_loop", 2),
    ("time.sleep(10**6), process", "sleep_forever", 10),
    ("socket read, process", "socket_read", 10),
    ("deadlock, process", "deadlock", 10),
    ("C loop holding the GIL, process", "c_loop", 10),
]
BATCH = 10


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.005)


def cancel_latencies(url: str, job_type: str, count: int, batch: int) -> list[float]:
    """Cancel `count` running jobs, `batch` at a time, from a second engine (as another process
    would); latency = the cancel call to the CANCELED status being committed (finished_at).

    Busy loops in threads run one at a time: ten of them in the worker's process would starve
    its own threads of the GIL, which measures the GIL rather than the ladder."""
    worker_engine = stopping_jobs.register(Engine(url))
    operator = Engine(url)
    worker = Worker(worker_engine, Settings(concurrency=BATCH, poll_interval=0.1))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    latencies: list[float] = []
    try:
        while len(latencies) < count:
            ids = [worker_engine.submit(job_type) for _ in range(batch)]
            for job_id in ids:
                stopping_jobs.wait_until_started(operator, job_id, timeout=60)
            asked = {}
            for job_id in ids:
                asked[job_id] = time.time()
                operator.cancel(job_id)
            wait(lambda ids=ids: all(operator.get(i).status.terminal for i in ids), 60)
            for job_id in ids:
                job = operator.get(job_id)
                assert job.status is Status.CANCELED, job
                latencies.append((job.finished_at or 0) - asked[job_id])
    finally:
        worker.stop()
        thread.join(30)
        worker_engine.close()
        operator.close()
    return latencies[:count]


def run_seconds(url: str, job_type: str, count: int) -> float:
    """Median seconds from a no-op job's start to its recorded end (finished_at - started_at),
    after the pool is warm: what running it in a thread or in a child process costs."""
    engine = stopping_jobs.register(Engine(url))
    engine.job(name="quick_in_process", isolation="process")(stopping_jobs.quick)
    worker = Worker(engine, Settings(concurrency=BATCH, poll_interval=0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        warm = [engine.submit(job_type) for _ in range(BATCH)]  # start the pooled children
        wait(lambda: all(engine.get(i).status.terminal for i in warm), 120)
        durations = []
        for _ in range(count):  # one at a time: the cost of one job, not a queue's
            job_id = engine.submit(job_type)
            wait(lambda job_id=job_id: engine.get(job_id).status.terminal, 60)
            job = engine.get(job_id)
            durations.append((job.finished_at or 0) - (job.started_at or 0))
        return statistics.median(durations)
    finally:
        worker.stop()
        thread.join(30)
        engine.close()


def run(options: Options) -> Table:
    table = Table(
        "Cancel latency (cancel call to committed CANCELED)",
        ["backend", "job", "cancels", "p50 s", "p99 s", "max s"],
    )
    count = max(BATCH, options.samples // 2)
    for backend in backends():
        for label, job_type, batch in KINDS:
            with fresh_database(backend) as url:
                values = cancel_latencies(url, job_type, count, batch)
            table.add(
                backend,
                label,
                len(values),
                statistics.median(values),
                percentile(values, 0.99),
                max(values),
            )
        with fresh_database(backend) as url:
            thread_cost = run_seconds(url, "quick", options.samples)
        with fresh_database(backend) as url:
            process_cost = run_seconds(url, "quick_in_process", options.samples)
        table.notes.append(
            f"{backend}: a no-op job takes {thread_cost * 1000:.2f} ms from start to recorded "
            f"end in a thread and {process_cost * 1000:.2f} ms in a warm pooled process "
            f"(overhead {(process_cost - thread_cost) * 1000:.2f} ms per job; median of "
            f"{options.samples}, one job at a time)"
        )
    table.notes.append(
        f"defaults: cancel_grace {Settings().cancel_grace} s, kill_grace {Settings().kill_grace} s;"
        " cancelled from a second engine, as another process would"
    )
    return table


if __name__ == "__main__":
    from bench.report import command_line, machine, write

    begun, machine_at_start = time.time(), machine()
    write(
        [run(Options(samples=int(sys.argv[1]) if len(sys.argv) > 1 else 200))],
        command_line(),
        begun,
        machine_at_start,
    )
