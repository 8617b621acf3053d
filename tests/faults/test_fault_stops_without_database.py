"""Items 9 and 10: timeouts are enforced and shutdown ends on time while the database is away."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pytest
from fault_workers import fault_app, registered
from outages import refused_connections, sqlite_write_lock
from private_postgres import private_server
from waiting import wait_for

from jobengine import DatabaseUnavailable, Status
from jobengine.store.sqlite import sqlite_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
TIMEOUT, CANCEL_GRACE = 2.0, 1.0  # spin's timeout; the worker's default cancel grace
SHUTDOWN_TIMEOUT, KILL_GRACE = 3.0, 2.0
SHUTDOWN_BOUND = SHUTDOWN_TIMEOUT + KILL_GRACE + 5.0  # the documented bound: the final writes


def spin_stopped_at(folder: Path, url: str, take_database_away: object) -> float:
    """Start a spin job (timeout 2 s), take the database away; seconds from start to stop."""
    with fault_app(folder, url) as app:
        app.worker()
        registered(app, 1)
        marker = folder / "stopped"
        job_id = app.engine.submit("spin", marker=str(marker))
        wait_for(lambda: app.engine.get(job_id).status is Status.RUNNING, 30, "spin to start")
        started = app.engine.get(job_id).started_at
        assert started is not None
        with take_database_away:  # type: ignore[attr-defined]
            wait_for(  # the file, once the job has written the moment into it
                lambda: marker.exists() and marker.read_text(),
                TIMEOUT + CANCEL_GRACE + 15,
                "the timeout to stop spin",
            )
            stopped = float(marker.read_text())

        def recorded() -> bool:
            with contextlib.suppress(DatabaseUnavailable):  # the server is coming back
                return app.engine.get(job_id).status is Status.FAILURE
            return False

        wait_for(recorded, 60, "the record")
        assert "timed out after 2 s" in (app.engine.get(job_id).errors or "")
        return stopped - started


def test_a_timeout_lands_on_time_while_another_process_holds_the_sqlite_lock(
    tmp_path: Path, sqlite_url: str
) -> None:
    took = spin_stopped_at(tmp_path, sqlite_url, sqlite_write_lock(sqlite_path(sqlite_url)))
    assert took <= TIMEOUT + CANCEL_GRACE + 1.0, took


@pytest.mark.postgres
def test_a_timeout_lands_on_time_while_postgres_is_down(tmp_path: Path) -> None:
    with private_server() as server:
        took = spin_stopped_at(tmp_path, server.url, refused_connections(server))
    assert took <= TIMEOUT + CANCEL_GRACE + 1.0, took


@pytest.mark.postgres
def test_sigterm_with_postgres_unreachable_exits_within_the_shutdown_bound(
    tmp_path: Path,
) -> None:
    with private_server() as server, fault_app(tmp_path, server.url) as app:
        worker = app.worker(
            "--shutdown-timeout", str(SHUTDOWN_TIMEOUT), "--kill-grace", str(KILL_GRACE)
        )
        registered(app, 1)
        with refused_connections(server):
            wait_for(lambda: "unavailable" in app.log(), 30, "the worker to meet the outage")
            asked = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(SHUTDOWN_BOUND + 30)
            took = time.monotonic() - asked
        assert code == 0, app.log()
        assert took <= SHUTDOWN_BOUND + 2.0, (took, app.log())
        assert "the reaper will" in app.log()  # what it could not write, it says it leaves
