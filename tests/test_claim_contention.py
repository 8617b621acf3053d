"""Claim exclusivity under contention: many claimers, 5,000 jobs, each job claimed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from jobengine.store import NewJob, Store

JOBS = 5_000
BATCH = 5
NOW = 1_800_000_000.0

# One claiming process: opens its own store, reports "ready", waits for "go" on stdin, then runs
# THREADS threads that claim until nothing is left and prints what each thread claimed as JSON.
CLAIMER_SCRIPT = """
import json, sys, threading
from jobengine.store import Store

url, name, threads, batch, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    float(sys.argv[5])
store = Store.open(url, pool_size=threads)
claims = {f"{name}-{i}": [] for i in range(threads)}
barrier = threading.Barrier(threads)

def claim(worker):
    barrier.wait(timeout=60)
    while True:
        jobs = store.jobs.claim(worker, [], batch, now)
        if not jobs:
            return
        claims[worker].extend(job.id for job in jobs)

workers = [threading.Thread(target=claim, args=(w,)) for w in claims]
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit("no go")
for thread in workers:
    thread.start()
for thread in workers:
    thread.join()
store.close()
print(json.dumps(claims), flush=True)
"""


def fill(store: Store, count: int) -> list[int]:
    """Insert `count` PENDING jobs in one transaction; return their ids."""
    ids = []
    with store.database.transaction() as transaction:
        for number in range(count):
            new_job = NewJob("noop", json.dumps({"n": number}), "default", number % 3, NOW - 1, 1)
            job_id = store.jobs.insert(transaction, new_job, NOW - 1, "filler")
            assert job_id is not None
            ids.append(job_id)
    return ids


def check_exclusive(store: Store, ids: list[int], claims: dict[str, list[int]]) -> None:
    """Every job claimed exactly once, by the claimer the jobs table names, one event each."""
    claimed = [job_id for worker_ids in claims.values() for job_id in worker_ids]
    duplicates = [job_id for job_id, seen in Counter(claimed).items() if seen > 1]
    assert duplicates == []
    assert sorted(claimed) == sorted(ids)
    assert sum(1 for worker_ids in claims.values() if worker_ids) >= 2, "no contention happened"
    with store.database.transaction(write=False) as transaction:
        events = transaction.execute(
            "SELECT job_id, COUNT(*) AS n, MIN(actor) AS actor FROM job_events"
            " WHERE verb = 'claim' GROUP BY job_id"
        )
        owners = transaction.execute("SELECT id, status, worker FROM jobs")
    assert len(events) == JOBS
    assert {row["n"] for row in events} == {1}
    claimer_of = {job_id: worker for worker, worker_ids in claims.items() for job_id in worker_ids}
    assert {row["job_id"]: row["actor"] for row in events} == claimer_of
    assert {row["id"]: row["worker"] for row in owners} == claimer_of
    assert {row["status"] for row in owners} == {"QUEUED"}


@pytest.mark.timeout(90)
def test_eight_threads_on_sqlite_claim_each_job_once(
    sqlite_url: str, record_property: pytest.RecordProperty
) -> None:
    store = Store.open(sqlite_url)
    try:
        ids = fill(store, JOBS)
        claims: dict[str, list[int]] = {f"thread-{i}": [] for i in range(8)}
        barrier = threading.Barrier(len(claims))
        errors: list[BaseException] = []

        def claim(worker: str) -> None:
            try:
                barrier.wait(timeout=30)
                while jobs := store.jobs.claim(worker, [], BATCH, NOW):
                    claims[worker].extend(job.id for job in jobs)
            except BaseException as error:
                errors.append(error)

        started = time.monotonic()
        threads = [threading.Thread(target=claim, args=(worker,)) for worker in claims]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=80)
        elapsed = time.monotonic() - started
        assert not errors
        check_exclusive(store, ids, claims)
    finally:
        store.close()
    report(record_property, "sqlite", claims, elapsed)


def start_claimer(script: Path, url: str, number: int) -> subprocess.Popen[str]:
    """One claiming process with 4 threads; returns once its store is open and it waits."""
    arguments = [url, f"process-{number}", "4", str(BATCH), str(NOW)]
    process = subprocess.Popen(
        [sys.executable, str(script), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise AssertionError(f"claimer {number} did not start: {process.communicate()[1]}")
    return process


@pytest.mark.timeout(120)
def test_four_processes_of_four_threads_on_postgresql_claim_each_job_once(
    postgres_url: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    store = Store.open(postgres_url)
    script = tmp_path / "claimer.py"
    script.write_text(CLAIMER_SCRIPT)
    processes: list[subprocess.Popen[str]] = []
    try:
        ids = fill(store, JOBS)
        for number in range(4):
            processes.append(start_claimer(script, postgres_url, number))
        started = time.monotonic()
        for process in processes:  # every process has its connections open: go at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        claims: dict[str, list[int]] = {}
        for process in processes:
            out, err = process.communicate(timeout=90)
            assert process.returncode == 0, err
            claims.update(json.loads(out))
        elapsed = time.monotonic() - started
        check_exclusive(store, ids, claims)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        store.close()
    report(record_property, "postgresql", claims, elapsed)


def report(
    record_property: pytest.RecordProperty,
    backend: str,
    claims: dict[str, list[int]],
    elapsed: float,
) -> None:
    total = sum(len(worker_ids) for worker_ids in claims.values())
    busiest = max(len(worker_ids) for worker_ids in claims.values())
    line = (
        f"{backend}: {total} jobs, {len(claims)} claimers, 0 duplicates, "
        f"{elapsed:.2f}s, busiest claimer {busiest}"
    )
    record_property("claim_exclusivity", line)
    print(line)
