"""`python -m bench compare [--quick]`: jobengine side by side with its peers and the raw
references, in one run on one PostgreSQL server and one disk; writes bench/RESULTS.md and
bench/results/compare.json.

Each system runs through its driver (`bench/peers/`) with the Python that has it installed:
the peers' own virtualenv (`make bench` creates bench/.venv-peers), the project's for
jobengine. Repetitions are interleaved (every system once, then every system again, in a
rotated order) so that the machine's drift spreads over all of them alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import raw
from bench.compare_report import RESULTS_JSON, write_results
from bench.databases import POSTGRES, POSTGRES_SERVER, SQLITE, fresh_database, postgres_reachable
from bench.peers.common import RESULT_PREFIX, ROOT, Config
from bench.report import machine

PEERS_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"


@dataclass(frozen=True)
class System:
    name: str
    backend: str
    module: str
    peer: bool = True  # a peer (compared with) or jobengine (compared)
    concurrency: int = 10
    history: bool = True  # keeps finished jobs, so the history measurement applies

    @property
    def key(self) -> str:
        return f"{self.name} ({self.backend})"

    @property
    def python(self) -> str:
        return str(PEERS_PYTHON) if self.peer else sys.executable

    @property
    def database(self) -> str:
        return "bench_" + "".join(c if c.isalnum() else "_" for c in self.key.lower())


SYSTEMS = [
    System("PgQueuer", POSTGRES, "bench.peers.pgqueuer_peer"),
    System("Procrastinate", POSTGRES, "bench.peers.procrastinate_peer"),
    System("Chancy", POSTGRES, "bench.peers.chancy_peer"),
    System("Huey", SQLITE, "bench.peers.huey_peer", history=False),
    System("jobengine", POSTGRES, "bench.peers.jobengine_peer", peer=False, concurrency=50),
    System("jobengine", SQLITE, "bench.peers.jobengine_peer", peer=False, concurrency=50),
]


@dataclass(frozen=True)
class Sizes:
    repetitions: int = 3
    jobs: int = 10_000
    single: int = 1_000
    bulk: int = 10_000
    latency_jobs: int = 500
    gap: float = 0.02
    history: int = 1_000_000
    reference_seconds: float = 3.0
    deadline: float = 180.0
    memory_jobs: int = 100_000


QUICK = Sizes(1, 1_000, 200, 3_000, 100, 0.01, 50_000, 1.0, 60.0, 20_000)


class Children:
    """Every driver process group this run started, killed on any way out."""

    def __init__(self) -> None:
        self.groups: set[int] = set()

    def run(self, command: list[str], timeout: float) -> str:
        with tempfile.TemporaryFile(mode="w+") as errors:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
            )
            self.groups.add(process.pid)
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                output = ""
            finally:
                self.kill(process.pid)
                process.wait(10)
            if process.returncode != 0 or RESULT_PREFIX not in output:
                errors.seek(0)
                tail = errors.read()[-800:].strip().replace("\n", " | ")
                raise RuntimeError(f"exit {process.returncode}: {tail or 'timed out'}")
        return output.rsplit(RESULT_PREFIX, 1)[1]

    def kill(self, group: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        self.groups.discard(group)

    def kill_all(self) -> None:
        for group in list(self.groups):
            self.kill(group)


class Comparison:
    def __init__(self, sizes: Sizes, quick: bool) -> None:
        self.sizes, self.quick = sizes, quick
        self.children = Children()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-compare-"))
        self.results: dict[str, Any] = {"systems": {}, "references": {}, "errors": []}

    # -- databases ------------------------------------------------------------------------------

    def url(self, backend: str, database: str) -> str:
        if backend == SQLITE:
            return f"sqlite:///{self.folder / database}.db"
        return POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + database

    def recreate(self, database: str) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{database}"')

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            for database in [s.database for s in SYSTEMS if s.backend == POSTGRES] + ["bench_raw"]:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    # -- drivers --------------------------------------------------------------------------------

    def config(self, system: System, **changes: Any) -> Config:
        sizes = self.sizes
        base = Config(
            url=self.url(system.backend, system.database),
            jobs=sizes.jobs,
            single=sizes.single,
            bulk=sizes.bulk,
            latency_jobs=sizes.latency_jobs,
            gap=sizes.gap,
            concurrency=system.concurrency,
            deadline=sizes.deadline,
        )
        return replace(base, **changes)

    def drive(self, system: System, command: str, **changes: Any) -> Any:
        config = self.config(system, **changes)
        line = [system.python, "-m", system.module, command, json.dumps(asdict(config))]
        return json.loads(self.children.run(line, 5 * self.sizes.deadline + 120))

    def attempt(self, system: System, what: str, command: str, **changes: Any) -> Any:
        """The driver's result, or None with the error recorded (the run goes on)."""
        began = time.monotonic()
        try:
            result = self.drive(system, command, **changes)
        except Exception as error:
            message = f"{system.key} {what}: {error}"
            print(f"  FAILED {message}", flush=True)
            self.results["errors"].append(message)
            return None
        phases = ", ".join(f"{n} {s:.1f}" for n, s in (result or {}).pop("phases", {}).items())
        took = f"{time.monotonic() - began:.1f} s" + (f" ({phases})" if phases else "")
        print(f"  {system.key}: {what} done in {took}", flush=True)
        return result

    def setup(self) -> list[System]:
        ready = []
        for system in SYSTEMS:
            if system.backend == POSTGRES:
                self.recreate(system.database)
            if system.peer and not PEERS_PYTHON.exists():
                self.results["errors"].append(f"{system.key}: no {PEERS_PYTHON}; run make bench")
                continue
            if self.attempt(system, "setup", "setup") is not None:
                ready.append(system)
        return ready

    # -- the phases -----------------------------------------------------------------------------

    def references(self) -> None:
        seconds = self.sizes.reference_seconds
        self.recreate("bench_raw")
        pg, sqlite = self.url(POSTGRES, "bench_raw"), self.url(SQLITE, "bench_raw")
        samples = max(50, self.sizes.latency_jobs // 2)
        measures = {
            (POSTGRES, "loop 1/txn"): lambda: raw.postgres_loop(pg, 1, seconds),
            (POSTGRES, "loop 100/txn"): lambda: raw.postgres_loop(pg, 100, seconds),
            (POSTGRES, "inserts"): lambda: raw.insert_rates(pg, 5_000, 100, seconds),
            (POSTGRES, "wake-up"): lambda: raw.postgres_wakeup(pg, samples),
            (SQLITE, "loop 1/txn"): lambda: raw.sqlite_loop(sqlite, 1, seconds),
            (SQLITE, "loop 100/txn"): lambda: raw.sqlite_loop(sqlite, 100, seconds),
            (SQLITE, "inserts"): lambda: raw.insert_rates(sqlite, 20_000, 300, seconds),
            (SQLITE, "wake-up"): lambda: raw.wakeup_round_trip(samples),
        }
        for (backend, name), measure in measures.items():
            store = self.results["references"].setdefault(backend, {})
            try:
                value = measure()
            except Exception as error:
                self.results["errors"].append(f"reference {backend} {name}: {error}")
                continue
            if name == "inserts":
                store.setdefault("insert 1/txn", []).append(value[0])
                store.setdefault("insert 1000/txn", []).append(value[1])
            elif name == "wake-up":
                store.setdefault(name, []).append(percentiles(value))
            else:
                store.setdefault(name, []).append(value)
        print("  references measured", flush=True)

    def record(self, system: System, name: str, value: Any) -> None:
        self.results["systems"].setdefault(system.key, asdict(system)).setdefault(name, []).append(
            value
        )

    def repetition(self, number: int, systems: list[System]) -> None:
        self.references()
        shift = number % len(systems)
        for system in systems[shift:] + systems[:shift]:
            result = self.attempt(system, f"repetition {number + 1}", "run")
            if result is None:
                continue
            for name in ("single", "bulk"):
                if name in result:
                    self.record(system, f"{name} enqueue", result[name])
            if "processing" in result:
                self.record(system, "processing", result["processing"])
            self.record(system, "latency", percentiles(result["latency"]["seconds"]))

    def history(self, systems: list[System]) -> None:
        with_history = [s for s in systems if s.history]
        for system in with_history:
            self.attempt(system, "reset", "reset")
            took = self.attempt(system, "history", "history", history=self.sizes.history)
            if took is not None:
                self.record(system, "history insert seconds", took["seconds"])
        for number in range(self.sizes.repetitions):
            shift = number % len(with_history)
            for system in with_history[shift:] + with_history[:shift]:
                result = self.attempt(system, f"history repetition {number + 1}", "process")
                if result is not None:
                    self.record(system, "processing with history", result["processing"])

    def memory(self) -> None:
        """A jobengine worker's RSS over `sizes.memory_jobs` jobs at concurrency 50."""
        from bench import memory

        for backend in (SQLITE, POSTGRES):
            print(f"== memory of a worker, {backend}", flush=True)
            with fresh_database(backend) as url:
                settled, highest, last, done = memory.measure(url, self.sizes.memory_jobs)
            self.results.setdefault("memory", {})[backend] = {
                "jobs": done,
                "settled": settled,
                "highest": highest,
                "last": last,
            }

    def run(self) -> Path:
        started, machine_at_start = time.time(), machine()
        print(f"machine: {machine_at_start}", flush=True)
        if not postgres_reachable():
            raise SystemExit(
                f"PostgreSQL at {POSTGRES_SERVER} does not answer; the comparison needs it "
                "(start it, or point JOBENGINE_BENCH_POSTGRES at another server)"
            )
        try:
            systems = self.setup()
            for number in range(self.sizes.repetitions):
                print(f"== repetition {number + 1} of {self.sizes.repetitions}", flush=True)
                self.repetition(number, systems)
            print(f"== {self.sizes.history:,} finished jobs in each table", flush=True)
            self.history(systems)
            self.memory()
        finally:
            self.children.kill_all()
            self.drop_all()
            shutil.rmtree(self.folder, ignore_errors=True)
        self.results["run"] = {
            "started": started,
            "seconds": time.time() - started,
            "machine": machine_at_start,
            "machine_at_end": machine(),
            "quick": self.quick,
            "sizes": asdict(self.sizes),
            "postgres": POSTGRES_SERVER,
        }
        return write_results(self.results)


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 in milliseconds (empty when nothing was measured)."""
    if len(seconds) < 2:
        return {}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": 1000 * cuts[49], "p95": 1000 * cuts[94], "p99": 1000 * cuts[98]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    arguments = parser.parse_args(argv)
    comparison = Comparison(QUICK if arguments.quick else Sizes(), arguments.quick)

    def on_signal(number: int, frame: object) -> None:
        comparison.children.kill_all()
        raise SystemExit(f"stopped by {signal.Signals(number).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    target = comparison.run()
    print(f"\nwritten to {target} and {RESULTS_JSON}")
