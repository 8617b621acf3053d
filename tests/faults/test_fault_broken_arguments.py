"""Fault: one job row's arguments are not JSON, claimed in one batch with good jobs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from click.testing import CliRunner
from fault_steps import ACTIVE, answer, read, statuses
from invariants import check_invariants
from starlette.testclient import TestClient
from waiting import wait_for, worker_thread

from jobengine import Engine
from jobengine.cli import main
from jobengine.web.app import create_app
from jobengine.web.config import WebConfig

WAIT = 10.0
BROKEN = "{not json"


def run_until_settled(engine: Engine, job_ids: list[int], broken: int, **settings: Any) -> str:
    """Run the jobs (a worker claims all of them at once) until each has ended: the broken one
    FAILURE, every other SUCCESS; the broken one's errors."""
    with worker_thread(engine, concurrency=10, shutdown_timeout=2.0, **settings):

        def settled() -> bool:
            return not set(statuses(engine, job_ids).values()) & ({"PENDING"} | ACTIVE)

        wait_for(settled, WAIT, f"jobs {job_ids} to end")
    assert statuses(engine, job_ids) == {
        job_id: "FAILURE" if job_id == broken else "SUCCESS" for job_id in job_ids
    }
    errors: str = read(engine, "SELECT errors FROM jobs WHERE id = ?", [broken])[0]["errors"]
    return errors


@pytest.mark.timeout(60)
def test_row_with_broken_arguments_fails_alone_and_its_batch_runs(database_url: str) -> None:
    engine = Engine(database_url)
    engine.job(answer)
    job_ids = [engine.submit("answer") for _ in range(5)]
    broken = job_ids[2]
    with engine.store.database.transaction() as transaction:  # what a bad migration might do
        transaction.execute("UPDATE jobs SET args = ? WHERE id = ?", (BROKEN, broken))
    good = [job_id for job_id in job_ids if job_id != broken]
    errors = run_until_settled(engine, job_ids, broken)
    assert errors.startswith("arguments are not valid JSON") and BROKEN in errors, errors
    claims = read(engine, "SELECT job_id, at, actor FROM job_events WHERE verb = 'claim'")
    assert len(claims) == 5 and len({(row["at"], row["actor"]) for row in claims}) == 1, claims
    assert all(engine.get(job_id).result == 42 for job_id in good)
    engine.close()
    check_invariants(database_url)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("column", ["priority", "max_attempts", "timeout", "attempt"])
def test_a_sqlite_row_with_text_in_a_number_fails_alone(sqlite_url: str, column: str) -> None:
    """SQLite keeps any value in any column: a row another program wrote with text where a
    number belongs once made every claim of the worker fail, and no job ran at all."""
    engine = Engine(sqlite_url)
    engine.job(answer)
    job_ids = [engine.submit("answer") for _ in range(5)]
    broken = job_ids[1]
    with engine.store.database.transaction() as transaction:
        transaction.execute(f"UPDATE jobs SET {column} = 'high' WHERE id = ?", (broken,))
    errors = run_until_settled(engine, job_ids, broken)
    assert errors == f"the job's row is not one jobengine wrote: its {column} 'high' is no number"
    engine.close()
    check_invariants(sqlite_url)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("column", "read_back"),
    [
        ("created_at", 0),
        ("run_at", 0),
        ("priority", 0),
        ("timeout", None),
        ("queued_at", None),
        ("progress", None),
        ("args", {"unreadable": "high"}),
        ("result", {"unreadable": "high"}),
    ],
)
def test_a_sqlite_row_with_a_bad_value_is_shown_not_a_crash(
    sqlite_url: str, column: str, read_back: object
) -> None:
    """The command line and the dashboard read a row another program wrote: what cannot be read
    shows as 0, none or the text it holds, and every other job is shown as it is."""
    engine = Engine(sqlite_url)
    engine.job(answer)
    job_ids = [engine.submit("answer") for _ in range(3)]
    with engine.store.database.transaction() as transaction:
        transaction.execute(f"UPDATE jobs SET {column} = 'high' WHERE id = ?", (job_ids[1],))
    assert getattr(engine.get(job_ids[1]), column) == read_back
    assert [job.id for job in engine.list()] == job_ids[::-1]
    for arguments in (["jobs"], ["jobs", "--json"], ["show", str(job_ids[1])]):
        result = CliRunner().invoke(main, ["--database-url", sqlite_url, *arguments])
        assert result.exit_code == 0, (arguments, result.output)
    with TestClient(create_app(engine, WebConfig()), base_url="http://127.0.0.1") as client:
        for path in ("/api/jobs", f"/api/jobs/{job_ids[1]}", "/jobs", f"/jobs/{job_ids[1]}"):
            assert client.get(path).status_code == 200, path
    engine.close()


REFUSE_THE_FAILURE = """
CREATE TRIGGER refuse_the_failure BEFORE UPDATE OF status ON jobs
WHEN NEW.status = 'FAILURE' AND NEW.errors LIKE 'arguments are not valid JSON%'
BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END
"""


@pytest.mark.timeout(60)
def test_a_broken_row_whose_failure_is_refused_is_recovered_by_the_next_heartbeat(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim commits before its rows are read: a refused failure of the unreadable one
    loses neither the claim of the others nor the job, which the worker's next heartbeat finds
    held by no one and ends. (When the failure shared the claim's transaction, its refusal
    undid the claim at every poll, and no job of the queue ever ran.)"""
    engine = Engine(sqlite_url)
    engine.job(answer)
    job_ids = [engine.submit("answer") for _ in range(4)]
    broken = job_ids[1]
    with engine.store.database.transaction() as transaction:
        transaction.execute("UPDATE jobs SET args = ? WHERE id = ?", (BROKEN, broken))
        transaction.execute(REFUSE_THE_FAILURE)
    with caplog.at_level(logging.WARNING, logger="jobengine.store"):
        errors = run_until_settled(engine, job_ids, broken, heartbeat_interval=0.2)
    assert errors == "its worker lost it while running this job; rerun it if that is safe"
    [refused] = [r.getMessage() for r in caplog.records if "could not be failed" in r.getMessage()]
    assert f"[{broken}]" in refused and "refused by a trigger" in refused, refused
    events = read(
        engine, "SELECT verb, reason FROM job_events WHERE job_id = ? ORDER BY id", [broken]
    )
    assert [row["verb"] for row in events] == ["submit", "claim", "start", "reap"]
    assert "does not hold this job" in events[-1]["reason"], events
    why = engine.why(broken)  # what an operator asks: its own worker ended it, alive
    assert why.code == "ended_failure", why
    assert why.sentence.endswith("; its worker lost it while running this job"), why.sentence
    engine.close()
    check_invariants(sqlite_url)
