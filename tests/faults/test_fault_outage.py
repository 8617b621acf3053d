"""Item 2: an outage longer than dead_after makes no live worker fail another's jobs."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from fault_workers import fault_app, registered
from invariants import check_invariants
from outages import refused_connections, sqlite_write_lock
from private_postgres import private_server
from waiting import wait_for

from jobengine import DatabaseUnavailable, Status
from jobengine.store.sqlite import sqlite_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
OUTAGE = 30.0  # longer than dead_after (20 s, the default)
JOB_SECONDS = 45.0
UNWANTED = {"reap", "retry", "release"}  # a job stopped, recovered or given back: none may be


def run_through_outage(
    folder: Path, url: str, outage: contextlib.AbstractContextManager[None]
) -> None:
    """3 workers run 6 long jobs; the outage lasts OUTAGE seconds; every job must SUCCEED."""
    with fault_app(folder, url) as app:
        engine = app.engine
        for _ in range(3):
            app.worker("--concurrency", "2")
        registered(app, 3)
        ids = [engine.submit("nap", seconds=JOB_SECONDS) for _ in range(6)]
        wait_for(lambda: all(engine.get(i).status is Status.RUNNING for i in ids), 60)
        started = time.monotonic()
        with outage:
            wait_for(lambda: time.monotonic() - started >= OUTAGE, OUTAGE + 5, "the outage")

        def ended() -> bool:
            with contextlib.suppress(DatabaseUnavailable):  # the server is coming back
                return all(engine.get(i).status.terminal for i in ids)
            return False

        wait_for(ended, 90, "the jobs to end")
        statuses = [engine.get(i).status for i in ids]
        events = [event for i in ids for event in engine.events(i)]
        assert statuses == [Status.SUCCESS] * 6, app.log()
        unwanted = [(e.job_id, e.verb, e.actor, e.reason) for e in events if e.verb in UNWANTED]
        assert not unwanted, f"{unwanted}\n{app.log()[-8000:]}"
    check_invariants(url)


def test_a_sqlite_write_lock_held_past_dead_after_fails_no_job(
    tmp_path: Path, sqlite_url: str
) -> None:
    run_through_outage(tmp_path, sqlite_url, sqlite_write_lock(sqlite_path(sqlite_url)))


@pytest.mark.postgres
def test_postgres_refusing_connections_past_dead_after_fails_no_job(tmp_path: Path) -> None:
    with private_server() as server:
        run_through_outage(tmp_path, server.url, refused_connections(server))
