"""`python -m jobengine.demo`: a worker runs five example jobs on SQLite, shown as they end."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

from jobengine.context import JobContext
from jobengine.engine import Engine
from jobengine.model import Job, Status
from jobengine.settings import Settings
from jobengine.worker import Worker

FOLDER = Path("demo-run")
SCHEDULED_AHEAD = 10.0
DEADLINE = 30.0
POLL_INTERVAL = 0.5


def build_engine(url: str) -> Engine:
    """An engine with the demo's job types registered."""
    engine = Engine(url)

    @engine.job
    def greet(ctx: JobContext, name: str) -> dict[str, str]:
        ctx.log.info("greeting %s", name)
        return {"greeting": f"hello {name}"}

    @engine.job
    def resize_disks(ctx: JobContext, steps: int) -> None:
        for step in range(1, steps + 1):
            ctx.sleep(0.5)  # wakes at once if the job is canceled
            ctx.progress(step / steps, f"disk {step} of {steps} resized")

    @engine.job
    def check_capacity(ctx: JobContext) -> tuple[str, str, str]:
        ctx.log.warning("/var is %s full", "91%")
        return ("WARNING", "capacity checked: /var is 91% full", "")

    @engine.job
    def provision(ctx: JobContext, server: str) -> None:
        print(f"connecting to {server} ...")
        raise ConnectionError(f"{server} refused the connection")

    @engine.job
    def nightly_report(ctx: JobContext) -> str:
        ctx.log.info("ran at its scheduled time")
        return "SUCCESS"

    return engine


def submit_examples(engine: Engine) -> list[int]:
    return [
        engine.submit("greet", name="world"),
        engine.submit("resize_disks", steps=4),
        engine.submit("check_capacity"),
        engine.submit("provision", server="web-7"),
        engine.submit("nightly_report", delay=SCHEDULED_AHEAD),
    ]


def fresh_database(folder: Path) -> str:
    """A new, empty SQLite file in `folder` (an earlier demo's file is removed)."""
    folder.mkdir(exist_ok=True)
    for old in folder.glob("demo.db*"):
        old.unlink()
    return f"sqlite:///{folder / 'demo.db'}"


def describe(engine: Engine, job: Job) -> str:
    """The job's outcome and its own log, as the demo prints them."""
    started = job.started_at or job.created_at
    waited, took = started - job.created_at, (job.finished_at or started) - started
    lines = [
        f"job {job.id} {job.type}: {job.status}"
        f" (started {waited:.1f} s after it was submitted, ran {took:.1f} s)"
    ]
    if job.result is not None:
        lines.append(f"  result: {job.result}")
    if job.output:
        lines.append(f"  output: {job.output}")
    if job.errors:
        lines.append(f"  errors: {job.errors.splitlines()[0]}")
    lines.append("  log:")
    for line in engine.log(job.id):
        for number, text in enumerate(line.text.splitlines()):
            lines.append(f"    {line.level:<7} {text}" if number == 0 else f"            {text}")
    return "\n".join(lines)


def show_as_they_end(engine: Engine, ids: list[int], deadline: float) -> bool:
    """Print each job when it ends; True if all ended before the (monotonic) deadline."""
    waiting = list(ids)
    while waiting and time.monotonic() < deadline:
        for job_id in list(waiting):
            job = engine.get(job_id)
            if job.status.terminal:
                print(describe(engine, job) + "\n", flush=True)
                waiting.remove(job_id)
        time.sleep(0.1)
    return not waiting


def announce(url: str, ids: list[int]) -> None:
    print(f"jobengine demo, database {url}")
    print(f"submitted jobs {', '.join(map(str, ids))} (job {ids[-1]} {SCHEDULED_AHEAD:g} s ahead);")
    print(f"a worker with 10 threads, polling every {POLL_INTERVAL:g} s, runs them.")
    print("Each job is shown as it ends:\n", flush=True)


def main(folder: Path = FOLDER) -> int:
    url = fresh_database(folder)
    engine = build_engine(url)
    worker = Worker(engine, Settings(poll_interval=POLL_INTERVAL))
    thread = threading.Thread(target=worker.run, name="demo-worker")
    ids = submit_examples(engine)
    announce(url, ids)
    thread.start()
    try:
        finished = show_as_they_end(engine, ids, time.monotonic() + DEADLINE)
    finally:
        worker.stop()
        thread.join(DEADLINE)
    counts = engine.store.jobs.count_by_status()
    engine.close()
    print("statuses: " + ", ".join(f"{status} {counts[status]}" for status in sorted(counts)))
    command = shutil.which("jobengine") or f"{sys.executable} -m jobengine"
    print(f"look around: {command} --database-url {url} jobs   (or show ID, log ID)")
    if not finished:
        print("some jobs did not end in time", file=sys.stderr)
    return 0 if finished and Status.RUNNING not in counts else 1


if __name__ == "__main__":
    sys.exit(main())
