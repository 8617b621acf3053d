"""The dashboard over 1,000,000 jobs: how long each page takes to render, over real HTTP.

`python -m bench.dashboard [--jobs N] [--requests N]`. The jobs page's first page, a status
filter, the Overview and /metrics must answer in under 200 ms on PostgreSQL (issue 13).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx2 as httpx

from bench.databases import POSTGRES, backends, fresh_database
from bench.report import Table, machine, write
from jobengine import Engine
from jobengine.web import DashboardServer, WebConfig
from jobengine.web import dashboard as dashboard_module

TARGET_MS = 200.0
COLUMNS = (
    "type, queue, priority, status, args, run_at, created_at, started_at, finished_at,"
    " attempt, max_attempts, worker"
)
# A history like a busy engine's: mostly SUCCESS, some FAILURE, CANCELED, WARNING; a few waiting.
STATUS = (
    "CASE WHEN n % 1000 = 0 THEN 'PENDING' WHEN n % 20 = 1 THEN 'FAILURE'"
    " WHEN n % 50 = 2 THEN 'CANCELED' WHEN n % 100 = 3 THEN 'WARNING' ELSE 'SUCCESS' END"
)
TYPE = "CASE n % 3 WHEN 0 THEN 'provision' WHEN 1 THEN 'report' ELSE 'sync' END"
RAN = "CASE WHEN n % 1000 = 0 THEN NULL ELSE {} END"  # a waiting job has not run yet
STARTED, FINISHED = RAN.format("? + n * 0.01"), RAN.format("? + n * 0.01 + 0.5")
WORKER = RAN.format("'bench:1:a'")
VALUES = (
    f"{TYPE}, 'default', 0, {STATUS}, '{{\"server\": \"web-' || (n % 500) || '\"}}',"
    f" ? + n * 0.01, ? + n * 0.01, {STARTED}, {FINISHED}, 1, 1, {WORKER}"
)
REQUIRED = ("/jobs", "/jobs?status=FAILURE", "/", "/metrics")
COLD = "first request after start"


def add_jobs(engine: Engine, count: int, start: float) -> float:
    """Insert `count` jobs in one statement (the last ones finishing now); the seconds it took."""
    database = engine.store.database
    if database.dialect == "sqlite":
        numbers = (
            "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers"
            " WHERE n < ?)"
        )
        sql = f"{numbers} INSERT INTO jobs ({COLUMNS}) SELECT {VALUES} FROM numbers"
        params: tuple[float, ...] = (count, start, start, start, start)
    else:
        sql = (
            f"INSERT INTO jobs ({COLUMNS}) SELECT {VALUES} FROM generate_series(1, ?) AS numbers(n)"
        )
        params = (start, start, start, start, count)
    began = time.perf_counter()
    with database.transaction() as transaction:
        transaction.execute(sql, params)
    with database.transaction() as transaction:
        transaction.execute("ANALYZE jobs" if database.dialect == "postgresql" else "ANALYZE")
    return time.perf_counter() - began


def pages(engine: Engine) -> list[tuple[str, str]]:
    """(what, path) of every page measured."""
    middle = engine.list(limit=1, status="FAILURE")[0].id // 2
    job = engine.list(limit=1, status="FAILURE")[0].id
    oldest = engine.list(limit=1, status="FAILURE", after=10)[0].id
    return [
        ("jobs page, first page", "/jobs"),
        ("jobs page, status filter", "/jobs?status=FAILURE"),
        ("jobs page, rare status", "/jobs?status=PENDING"),
        ("jobs page, status and type", "/jobs?status=FAILURE&type=report"),
        ("jobs page, a page deep in history", f"/jobs?status=FAILURE&after={middle}"),
        ("jobs page, free-text search", "/jobs?q=web-42"),
        ("API job list, status filter", "/api/jobs?status=FAILURE"),
        ("job detail", f"/jobs/{job}"),
        ("job detail, one of the first jobs", f"/jobs/{oldest}"),
        ("overview", "/"),
        ("metrics", "/metrics"),
    ]


def timings(client: httpx.Client, path: str, requests: int) -> list[float]:
    """Milliseconds per request of `path` (after two untimed warm-ups)."""
    for _ in range(2):
        client.get(path).raise_for_status()
    found = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path)
        found.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return found


def first_request(engine: Engine, path: str) -> float:
    """Milliseconds of the first request of `path` to a dashboard just started: its running
    count of ended jobs counts everything from scratch (as it does again once an hour)."""
    server = DashboardServer(engine, WebConfig(port=0)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/healthz").raise_for_status()  # the connection, without counting
            began = time.perf_counter()
            client.get(path).raise_for_status()
            return (time.perf_counter() - began) * 1000
    finally:
        server.stop()


def time_pages(engine: Engine, backend: str, requests: int, table: Table) -> bool:
    """Time every page on one dashboard; True if the required ones are fast."""
    fast = True
    server = DashboardServer(engine, WebConfig(port=0)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for what, path in pages(engine):
                found = sorted(timings(client, path, requests))
                median = statistics.median(found)
                p95 = found[min(len(found) - 1, int(len(found) * 0.95))]
                required = path in REQUIRED and backend == POSTGRES
                verdict = ("ok" if p95 < TARGET_MS else "TOO SLOW") if required else ""
                fast = fast and (not required or p95 < TARGET_MS)
                table.add(backend, what, path, median, p95, verdict)
    finally:
        server.stop()
    return fast


def measure(backend: str, count: int, requests: int, table: Table) -> bool:
    """Fill a fresh database, serve it, time every page; True if the required ones are fast."""
    with fresh_database(backend) as url:
        engine = Engine(url)
        try:
            seconds = add_jobs(engine, count, time.time() - count * 0.01)
            print(f"{backend}: {count:,} jobs inserted in {seconds:.1f} s", flush=True)
            for what, path in (("overview", "/"), ("metrics", "/metrics")):
                took = first_request(engine, path)
                table.add(backend, f"{what}, {COLD}", path, took, took, "")
            return time_pages(engine, backend, requests, table)
        finally:
            engine.close()


def run(count: int = 1_000_000, requests: int = 20) -> tuple[Table, bool]:
    table = Table(
        f"Dashboard pages over {count:,} jobs",
        ["backend", "page", "path", "median ms", "p95 ms", f"under {TARGET_MS:.0f} ms"],
    )
    table.notes.append(
        "Real HTTP to the dashboard (uvicorn, one process) on loopback, one kept-alive"
        " connection; each time includes rendering the whole page. Required: the jobs page's"
        f" first page and a status filter, the overview and /metrics on PostgreSQL, p95 under"
        f" {TARGET_MS:.0f} ms."
    )
    table.notes.append(
        "The overview is measured without its 1 s shared summary: every request reads the"
        " jobs not ended and the ended jobs of the minutes not settled yet (web/ended.py);"
        " the doctor's report is kept 5 s. A 'first request after start' row is one request"
        " to a new dashboard, which counts the ended jobs from scratch (again once an hour)."
    )
    dashboard_module.SUMMARY_SECONDS = 0.0
    fast = True
    for backend in backends():
        fast = measure(backend, count, requests, table) and fast
    if POSTGRES not in backends():
        table.notes.append("PostgreSQL was unreachable: the required figures are missing.")
        fast = False
    return table, fast


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the database")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument(
        "--print-only", action="store_true", help="print, do not update bench/results/latest.md"
    )
    arguments = parser.parse_args(argv)
    started, at_start = time.time(), machine()
    table, fast = run(arguments.jobs, arguments.requests)
    if arguments.print_only:
        print(table.text())
    else:
        command = " ".join(["python -m bench.dashboard", *(argv or sys.argv[1:])])
        write([table], command, started, at_start)
    return 0 if fast else 1


if __name__ == "__main__":
    sys.exit(main())
