"""jobengine on SQLite with the wake-up between processes (`jobengine.store.wakeup`), driven
from outside the engine until the SQLite backend wires it in itself: the worker (the Worker
API in its own process, set up as `jobengine worker` sets it up) listens on the database's
wake-up folder and wakes its loop through `Engine.wake_workers`; the submitter notifies after
each committed submit through `Engine.on_submit`.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from bench.app import make_engine
from bench.peers.common import Config, main
from bench.peers.jobengine_peer import JobenginePeer
from jobengine import Engine
from jobengine.store.sqlite import sqlite_path
from jobengine.store.wakeup import Wakeup
from jobengine.worker import Settings, Worker

try:
    from jobengine.store.jobs import CHANNEL
except ImportError:  # pragma: no cover - moved by a refactoring
    CHANNEL = "jobengine"


def wired_in(engine: Engine) -> bool:
    """Whether the SQLite backend already notifies and listens by itself."""
    from jobengine.store.database import Database

    return type(engine.store.database).listen is not Database.listen


class JobengineWakeupPeer(JobenginePeer):
    name = "jobengine + wake-up"

    def work(self, config: Config, ready: Callable[[], None]) -> None:
        from jobengine.cli.worker import setup_logging

        engine = make_engine(config.url)
        worker = Worker(engine, Settings(concurrency=config.concurrency))
        signal.signal(signal.SIGTERM, lambda number, frame: worker.stop())
        listening = threading.Event()
        done = threading.Event()
        wakeup = Wakeup(sqlite_path(config.url))

        def heard(payload: str) -> None:
            listening.set()
            engine.wake_workers()

        listener = threading.Thread(
            target=wakeup.listen, args=(CHANNEL, heard, done), daemon=True, name="wakeup"
        )
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as folder:
            setup_logging(str(Path(folder) / "worker.log"))
            if not wired_in(engine):  # once the backend listens itself, this is not needed
                listener.start()
                listening.wait(10)
            ready()
            try:
                worker.run()
            finally:
                done.set()
                if listener.is_alive():
                    listener.join(5)
                engine.close()

    def before_submits(self, engine: Engine, config: Config) -> None:
        if not wired_in(engine):
            wakeup = Wakeup(sqlite_path(config.url))
            engine.on_submit(lambda: wakeup.notify(CHANNEL, "default"))


PEER = JobengineWakeupPeer()

if __name__ == "__main__":
    main(PEER, "bench.peers.jobengine_wakeup_peer")
