"""`jobengine restart` through the database: workers drain and start again, no job is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_for, wait_for_status
from worker_processes import App

from jobengine import Status


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[App]:
    app = App(tmp_path, database_url)
    yield app
    app.close()


@pytest.mark.timeout(120)
def test_restart_drains_the_worker_and_starts_it_again(app: App) -> None:
    worker = app.worker()
    old = app.registered(worker.pid)
    running = app.engine.submit("nap", seconds=1.5)
    wait_for_status(app.engine, running, {Status.RUNNING}, timeout=30)

    restart = app.start("restart", log="restart.log")
    assert restart.wait(30) == 0
    assert "asked 1 worker(s) to restart" in app.log("restart.log")

    def new_incarnation() -> bool:
        rows = app.engine.store.workers.find(include_stopped=True)
        return any(
            row.pid == worker.pid and row.id != old.id and row.state == "running" for row in rows
        )

    wait_for(new_incarnation, 60, "the worker to start again in the same process")
    assert app.engine.get(running).status is Status.SUCCESS  # it drained, not interrupted
    states = {row.id: row.state for row in app.engine.store.workers.find(include_stopped=True)}
    assert states[old.id] == "stopped"
    after = app.engine.submit("nap", seconds=0)
    assert wait_for_status(app.engine, after, {Status.SUCCESS}, timeout=30) is Status.SUCCESS
    assert worker.poll() is None  # the same process, now running the new worker
