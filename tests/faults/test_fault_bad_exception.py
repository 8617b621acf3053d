"""Fault: a job raises an exception whose __str__ (and __repr__) raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_steps import ACTIVE, answer, raise_unprintable, read, statuses
from invariants import check_invariants
from waiting import wait_for, worker_thread

from jobengine import Engine

WAIT = 10.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_unprintable_exception_fails_its_job_and_the_worker_runs_on(
    database_url: str, isolation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # job processes import the package under test, not the cwd's
    engine = Engine(database_url)
    engine.job(raise_unprintable, isolation=isolation)
    engine.job(answer, isolation=isolation)
    # One job at a time: the next job can only run if the pool's one thread survived.
    with worker_thread(engine, concurrency=1, shutdown_timeout=2.0) as worker:
        bad = engine.submit("raise_unprintable")
        wait_for(lambda: statuses(engine, [bad])[bad] == "FAILURE", WAIT, f"job {bad} to fail")
        good = engine.submit("answer")
        wait_for(lambda: statuses(engine, [good])[good] == "SUCCESS", WAIT, f"job {good} to run")
        pool = worker.executors[isolation].pool  # type: ignore[attr-defined]
        assert len(pool.threads) == 1 and pool.threads[0].is_alive()
    errors = read(engine, "SELECT errors FROM jobs WHERE id = ?", [bad])[0]["errors"] or ""
    assert errors.startswith("Unprintable"), errors
    assert "could not be read" in errors.splitlines()[0]
    assert "raise_unprintable" in errors  # the traceback is kept
    assert not set(statuses(engine, [bad, good]).values()) & ACTIVE
    assert engine.get(good).result == 42
    engine.close()
    check_invariants(database_url)
