"""A worker's memory while it runs 100,000 no-op jobs at concurrency 50: under 100 MB RSS, and no
growth after the first 10,000 (issue 14).

Run alone: python -m bench memory [--jobs N]   (the default is 100,000 jobs per backend)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psutil

from bench.app import make_engine
from bench.databases import backends, fill, fresh_database
from bench.options import Options
from bench.processes import worker_process
from bench.report import Table
from bench.throughput import ended

JOBS = 100_000
CONCURRENCY = 50
SETTLED = 10_000  # jobs after which the RSS should stay where it is
LIMIT_MB = 100.0
TIME_BOX = 600.0  # seconds per backend, however slow the machine
SAMPLE_EVERY = 0.25


def megabytes(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1_000_000


def measure(url: str, jobs: int) -> tuple[float, float, float, int]:
    """(RSS once SETTLED jobs ended, the highest RSS, RSS at the end, jobs ended), in MB."""
    engine = make_engine(url)
    try:
        fill(engine.store, jobs, time.time())
        with (
            tempfile.TemporaryDirectory(prefix="bench-memory-") as folder,
            worker_process(url, 1.0, CONCURRENCY, str(Path(folder) / "worker.log")) as pid,
        ):
            settled, highest, done = 0.0, 0.0, 0
            deadline = time.monotonic() + TIME_BOX
            while done < jobs and time.monotonic() < deadline:
                time.sleep(SAMPLE_EVERY)  # a sampling period, not synchronisation
                rss, done = megabytes(pid), ended(engine)
                highest = max(highest, rss)
                if not settled and done >= min(SETTLED, jobs):
                    settled = rss
            return settled, highest, megabytes(pid), done
    finally:
        engine.close()


def run(options: Options) -> Table:
    jobs = JOBS if options.jobs == Options().jobs else max(options.jobs, SETTLED)  # --jobs N
    table = Table(
        f"Worker memory over {jobs:,} no-op jobs, concurrency {CONCURRENCY}",
        [
            "backend",
            "jobs ended",
            f"RSS at {SETTLED:,} MB",
            "highest MB",
            "at the end MB",
            f"growth after {SETTLED:,} MB",
            f"under {LIMIT_MB:g} MB",
        ],
    )
    for backend in backends():
        with fresh_database(backend) as url:
            settled, highest, last, done = measure(url, jobs)
        table.add(
            backend,
            done,
            settled,
            highest,
            last,
            last - settled,
            "yes" if highest < LIMIT_MB else "NO",
        )
    table.notes.append(
        "RSS of the `jobengine worker` process (its own log file at INFO, as in production), "
        f"sampled every {SAMPLE_EVERY:g} s; growth = RSS at the end minus RSS once "
        f"{SETTLED:,} jobs had ended"
    )
    return table
