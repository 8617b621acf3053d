"""Several hosts and one database, for one test: set up, operated on, observed, torn down."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psycopg
from host_app import APP_SOURCE, read_executions
from host_clock import HostClock
from host_database import namespaced_postgres
from host_invariants import Findings, inspect_jobs
from host_machine import Host
from host_network import Network, network
from host_requirements import require_machine
from waiting import wait_for

from jobengine import Engine
from jobengine.store import WorkerRecord


def _load(path: Path, name: str) -> ModuleType:
    """Import the app module from its file, as the hosts import it by name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Settings:
    """The shape of a test's cluster and the short timings of its workers."""

    hosts: int = 3
    workers: int = 2
    offsets: Sequence[float] | None = None  # each host's clock offset; None: no faketime at all
    heartbeat_interval: float = 1.0
    dead_after: float = 4.0
    poll_interval: float = 0.1
    concurrency: int = 10
    log_level: str = "INFO"
    backend: str = "postgresql"  # or "sqlite": one file that every host of the machine opens

    def run_options(self, host: Host) -> list[str]:
        """`jobengine run` options: the supervisor restarts its workers quickly; each host
        serves the default queue and one named after it (to send work to that host only)."""
        return [
            "run",
            *("--queues", f"default,{host.name}"),
            *("--workers", str(self.workers), "--concurrency", str(self.concurrency)),
            *("--poll-interval", str(self.poll_interval)),
            *("--heartbeat-interval", str(self.heartbeat_interval)),
            *("--dead-after", str(self.dead_after)),
            *("--restart-delay", "0.2", "--restart-delay-max", "1"),
            *("--shutdown-timeout", "10", "--cancel-grace", "0.5", "--kill-grace", "1"),
            *("--log-file", "host.log", "--log-level", self.log_level),
        ]


class Cluster:
    """The hosts, the database they share, and an engine of the test's own to read it."""

    def __init__(
        self, folder: Path, net: Network, urls: tuple[str, str], library: Path, settings: Settings
    ) -> None:
        self.folder, self.network, self.settings, self.library = folder, net, settings, library
        self.host_url, test_url = urls
        self.app_name = f"hosts_app_{net.token}"
        (folder / f"{self.app_name}.py").write_text(APP_SOURCE)
        self.runs = folder / "runs"
        self.runs.mkdir()
        self.engine: Engine = _load(folder / f"{self.app_name}.py", self.app_name).register(
            Engine(test_url)
        )
        self.hosts = [self._make_host(number) for number in range(1, settings.hosts + 1)]

    def _make_host(self, number: int) -> Host:
        folder = self.folder / f"host-{number}"
        folder.mkdir()
        offsets = self.settings.offsets
        clock = None if offsets is None else HostClock(folder, self.library, offsets[number - 1])
        paths = [str(self.folder), os.environ.get("PYTHONPATH", "")]
        environment = {
            **os.environ,
            "HOSTS_RUNS": str(self.runs),
            "PYTHONPATH": os.pathsep.join(path for path in paths if path),
        }
        environment.pop("JOBENGINE_DATABASE_URL", None)
        return Host(number, self.network.host_namespace(number), folder, environment, clock)

    def host(self, number: int) -> Host:
        return self.hosts[number - 1]

    # -- running ------------------------------------------------------------------------------

    def start(self, host: Host) -> None:
        arguments = ["--app", self.app_name, "--database-url", self.host_url]
        host.start([*arguments, *self.settings.run_options(host)])

    def start_all(self, timeout: float = 60) -> None:
        for host in self.hosts:
            self.start(host)
        for host in self.hosts:
            self.wait_registered(host, timeout)

    def workers_of(self, host: Host) -> list[WorkerRecord]:
        """The host's registered workers whose process is alive (whatever state their row
        shows: a reaper with a wrong clock may have declared a living worker dead)."""
        members = set(host.members())
        rows = self.engine.store.workers.find()
        return [row for row in rows if row.host == host.name and row.pid in members]

    def wait_registered(self, host: Host, timeout: float = 60) -> list[WorkerRecord]:
        count = self.settings.workers

        def ready() -> list[WorkerRecord]:
            assert host.supervisor is not None and host.supervisor.poll() is None, self.trouble(
                host
            )
            rows = self.workers_of(host)
            return rows if len(rows) == count else []

        return wait_for(ready, timeout, f"{count} workers of {host.name} to register")

    def pause_cleanly(self, host: Host, attempts: int = 50) -> None:
        """SIGSTOP the host at a moment none of its sessions holds a transaction id (row locks
        the others' reapers would wait on); else resume it and try again. A host frozen while
        it holds locks stalls everyone until it resumes: a different scenario."""
        assert self.engine.store.database.dialect == "postgresql", "PostgreSQL only"
        address = self.network.host_address(host.number)
        for _ in range(attempts):
            host.pause()
            if not self._transactions_of(address):
                return
            host.resume()
        raise AssertionError(f"could not pause {host.name} outside a transaction")

    def _transactions_of(self, address: str) -> int:
        with psycopg.connect(self.engine.url) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE client_addr = %s AND backend_xid IS NOT NULL",
                (address,),
            ).fetchone()
        return int(row[0]) if row else 0

    def trouble(self, host: Host) -> str:
        """The end of the host's output, for a failure message."""
        text = "".join(
            path.read_text(errors="replace")[-1500:]
            for path in sorted(host.folder.glob("*.out")) + sorted(host.folder.glob("*.log"))
        )
        return f"{host.name} ended; its output:\n{text}"

    def stop_all(self, timeout: float = 60) -> None:
        for host in self.hosts:
            host.request_stop()
        for host in self.hosts:
            host.terminate(timeout)

    def findings(self, job_ids: Sequence[int], grace: float = 0.0) -> Findings:
        timelines = {host.name: host.timeline for host in self.hosts}
        runs = read_executions(self.runs)
        return inspect_jobs(self.engine, job_ids, runs, timelines, time.monotonic(), grace)

    def close(self) -> None:
        for host in self.hosts:
            host.close()
        self.engine.close()


@contextlib.contextmanager
def cluster(folder: Path, settings: Settings | None = None) -> Iterator[Cluster]:
    """A database host and `settings.hosts` hosts, not yet running; all torn down afterwards."""
    settings = settings or Settings()
    binaries, library = require_machine()
    with network(settings.hosts) as net, contextlib.ExitStack() as stack:
        if settings.backend == "sqlite":
            urls = (f"sqlite:///{folder / 'jobs.db'}",) * 2
        else:
            server = stack.enter_context(namespaced_postgres(binaries, net))
            urls = (server.host_url, server.test_url)
        made = Cluster(folder, net, urls, library, settings)
        try:
            yield made
        finally:
            made.close()
