"""`make demo`: a worker, its scheduler and the dashboard on SQLite, with jobs to look at."""

from __future__ import annotations

import shutil
import signal
import sys
import threading
from pathlib import Path

from jobengine.context import JobContext
from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.interrupts import SignalEvent
from jobengine.settings import Settings
from jobengine.web import DashboardServer, WebConfig
from jobengine.web.config import DEFAULT_PORT
from jobengine.worker import Worker

FOLDER = Path("demo-run")
RECURRING_EVERY = 15
SCHEDULE_INTERVAL = 5.0
STOP_TIMEOUT = 15.0


def build_engine(url: str, recurring_every: int = RECURRING_EVERY) -> Engine:
    """An engine with the demo's job types and its recurring job registered."""
    engine = Engine(url)

    @engine.job
    def follow_me(ctx: JobContext, steps: int = 300) -> str:
        for step in range(1, steps + 1):
            ctx.log.info("step %s of %s: copying block %s", step, steps, step * 4096)
            ctx.progress(step / steps)
            ctx.sleep(1.0)  # wakes at once on cancel
        return "copied"

    @engine.job
    def loop_forever(ctx: JobContext) -> None:
        round_number = 0
        while True:
            round_number += 1
            ctx.log.info("still looping (round %s); press Cancel to stop me", round_number)
            ctx.sleep(2.0)

    @engine.job
    def greet(ctx: JobContext, name: str) -> dict[str, str]:
        return {"greeting": f"hello {name}"}

    @engine.job
    def check_capacity(ctx: JobContext) -> tuple[str, str, str]:
        ctx.log.warning("/var is %s full", "91%")
        return ("WARNING", "capacity checked: /var is 91% full", "")

    @engine.job
    def provision(ctx: JobContext, server: str) -> None:
        print(f"connecting to {server} ...")
        raise ConnectionError(f"{server} refused the connection")

    @engine.recurring(every=recurring_every)
    def heartbeat_report(ctx: JobContext) -> str:
        ctx.log.info("the recurring job fired on time")
        return "SUCCESS"

    return engine


def fresh_database(folder: Path) -> str:
    """A new, empty SQLite file in `folder` (an earlier demo's files are removed, with the
    wake-up folder a killed demo leaves)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("demo.db*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    return f"sqlite:///{folder / 'demo.db'}"


def submit_examples(engine: Engine) -> dict[str, int]:
    return {
        "follow_me": engine.submit("follow_me"),
        "loop_forever": engine.submit("loop_forever"),
        "greet": engine.submit("greet", name="world"),
        "check_capacity": engine.submit("check_capacity"),
        "provision": engine.submit("provision", server="web-7"),
        "later": engine.submit("greet", name="later", delay=60),
    }


class Demo:
    """The demo's parts: `start()` brings them up, `stop()` drains and closes them."""

    def __init__(
        self,
        folder: Path = FOLDER,
        port: int = DEFAULT_PORT,
        recurring_every: int = RECURRING_EVERY,
        schedule_interval: float = SCHEDULE_INTERVAL,
    ) -> None:
        self.database_url = fresh_database(folder)
        self.engine = build_engine(self.database_url, recurring_every)
        settings = Settings(
            poll_interval=0.5, heartbeat_interval=2.0, schedule_interval=schedule_interval
        )
        self.worker = Worker(self.engine, settings)
        self.thread = threading.Thread(target=self.worker.run, name="demo-worker", daemon=True)
        try:
            self.server = DashboardServer(self.engine, WebConfig(port=port))
        except ConfigurationError:  # the port is taken: any free one will do
            self.server = DashboardServer(self.engine, WebConfig(port=0))
        self.jobs: dict[str, int] = {}
        self.recurring_every = recurring_every

    def start(self) -> Demo:
        self.jobs = submit_examples(self.engine)
        self.thread.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.worker.stop()
        self.worker.stop()  # a second stop: cancel running jobs now rather than wait for them
        self.thread.join(STOP_TIMEOUT)
        self.engine.close()

    def announce(self) -> str:
        url = self.server.url
        return "\n".join(
            [
                f"jobengine demo: database {self.database_url}",
                f"dashboard: {url}",
                "",
                "Three things to try:",
                "  1. Watch a job's log grow:",
                f"     {url}/jobs/{self.jobs['follow_me']}",
                "  2. Press Cancel on the job that loops:",
                f"     {url}/jobs/{self.jobs['loop_forever']}",
                f"  3. See the recurring job fire (every {self.recurring_every} s):",
                f"     {url}/schedules",
                "",
                "Ctrl-C stops the demo.",
            ]
        )


def main(folder: Path = FOLDER, port: int = DEFAULT_PORT, run_for: float | None = None) -> int:
    """Run the demo until Ctrl-C or SIGTERM (or for `run_for` seconds, for a test). Both
    signals are handled even where they were ignored (a demo started in a shell's background)."""
    stopped = SignalEvent()  # set by the signal handlers
    previous = {
        number: signal.signal(number, lambda *_: stopped.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    demo = Demo(folder, port).start()
    print(demo.announce(), flush=True)
    try:
        if stopped.wait(run_for):
            print("\nstopping the demo ...", flush=True)
    finally:
        demo.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
