"""The promises every fault test checks afterwards, read from the tables with plain SQL.

`check_invariants(database_url)` asserts that:
- every job is terminal, or PENDING, or (QUEUED, RUNNING, TO_CANCEL) owned by a worker whose
  row is live (state running or draining);
- every terminal job has exactly one terminal event (to_status CANCELED, SUCCESS, WARNING or
  FAILURE), and it names the job's status; a job that is not terminal has none;
- no event row follows a job's terminal event.

Import it from a test in tests/faults as `from invariants import check_invariants`: pytest's
default "prepend" import mode puts the folder of a test file that has no __init__.py first on
sys.path, so the modules beside it import by their plain names.
"""

from __future__ import annotations

from typing import Any

from jobengine import Engine

TERMINAL = ("CANCELED", "SUCCESS", "WARNING", "FAILURE")
ACTIVE = ("QUEUED", "RUNNING", "TO_CANCEL")
LIVE_WORKER_STATES = ("running", "draining")
MOST_SHOWN = 50  # offenders listed in the message; the count says how many there were

TERMINAL_LIST = ", ".join(f"'{status}'" for status in TERMINAL)
ACTIVE_LIST = ", ".join(f"'{status}'" for status in ACTIVE)
LIVE_LIST = ", ".join(f"'{state}'" for state in LIVE_WORKER_STATES)

UNOWNED = f"""
SELECT j.id, j.status, j.worker, w.state AS worker_state
FROM jobs j LEFT JOIN workers w ON w.id = j.worker
WHERE j.status IN ({ACTIVE_LIST}) AND (w.id IS NULL OR w.state NOT IN ({LIVE_LIST}))
ORDER BY j.id
"""
UNKNOWN_STATUS = f"""
SELECT id, status FROM jobs
WHERE status NOT IN ({TERMINAL_LIST}, {ACTIVE_LIST}, 'PENDING') ORDER BY id
"""
TERMINAL_EVENTS = f"""
SELECT j.id, j.status, COUNT(e.id) AS ends,
       MIN(e.to_status) AS first_status, MAX(e.to_status) AS last_status
FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.to_status IN ({TERMINAL_LIST})
GROUP BY j.id, j.status
HAVING (j.status IN ({TERMINAL_LIST})
        AND (COUNT(e.id) <> 1 OR MIN(e.to_status) <> j.status))
    OR (j.status NOT IN ({TERMINAL_LIST}) AND COUNT(e.id) > 0)
ORDER BY j.id
"""
LATE_EVENTS = f"""
SELECT e.job_id, e.id, e.verb, e.from_status, e.to_status, ended.first_end
FROM job_events e
JOIN (SELECT job_id, MIN(id) AS first_end FROM job_events
      WHERE to_status IN ({TERMINAL_LIST}) GROUP BY job_id) ended ON ended.job_id = e.job_id
WHERE e.id > ended.first_end
ORDER BY e.job_id, e.id
"""


def check_invariants(database_url: str) -> None:
    """Assert the invariants above on the database at `database_url`; the message lists every
    offender (the first MOST_SHOWN of them) with what is wrong."""
    engine = Engine(database_url)
    try:
        with engine.store.database.transaction(write=False) as transaction:
            unowned = transaction.execute(UNOWNED)
            unknown = transaction.execute(UNKNOWN_STATUS)
            terminal = transaction.execute(TERMINAL_EVENTS)
            late = transaction.execute(LATE_EVENTS)
    finally:
        engine.close()
    problems = [*map(_unowned, unowned), *map(_unknown, unknown)]
    problems += [*map(_terminal, terminal), *map(_late, late)]
    if problems:
        shown = "\n".join(f"- {problem}" for problem in problems[:MOST_SHOWN])
        more = len(problems) - MOST_SHOWN
        tail = f"\n... and {more} more" if more > 0 else ""
        raise AssertionError(f"{len(problems)} invariant violations:\n{shown}{tail}")


def _unowned(row: dict[str, Any]) -> str:
    owner, state = row["worker"], row["worker_state"]
    if owner is None:
        holder = "owned by no worker"
    elif state is None:
        holder = f"owned by worker {owner!r}, which has no row"
    else:
        holder = f"owned by worker {owner!r}, which is {state}"
    return f"job {row['id']} is {row['status']}, {holder} (it needs a live owner)"


def _unknown(row: dict[str, Any]) -> str:
    return f"job {row['id']} has the unknown status {row['status']!r}"


def _terminal(row: dict[str, Any]) -> str:
    ends, status = int(row["ends"]), row["status"]
    if status not in TERMINAL:
        return f"job {row['id']} is {status} (not terminal) but has {ends} terminal events"
    if ends != 1:
        kinds = f" ({row['first_status']} .. {row['last_status']})" if ends else ""
        return f"job {row['id']} is {status} with {ends} terminal events{kinds}, not exactly 1"
    return f"job {row['id']} is {status} but its terminal event says {row['first_status']}"


def _late(row: dict[str, Any]) -> str:
    return (
        f"job {row['job_id']}: event {row['id']} ({row['verb']} {row['from_status']} -> "
        f"{row['to_status']}) comes after its terminal event {row['first_end']}"
    )
