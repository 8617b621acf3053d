"""A private PostgreSQL started by the test inside the database namespace.

It listens on the namespace's switch address (for the hosts) and on a Unix socket in its own
folder (for the test process, which is outside every namespace). Keepalives and
tcp_user_timeout make the server drop a cut-off client within a few seconds, so the row locks
of a partitioned host end instead of blocking the others for the kernel's 15-minute default.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from host_network import DATABASE_ADDRESS, SUBNET, Network

FOLDER_PREFIX = "jobengine-hosts-pg-"  # then the creating process's pid
PORT = 5432  # the namespace is the test's own, so the standard port is free in it
SERVER_SETTINGS = {
    "listen_addresses": DATABASE_ADDRESS,
    "max_connections": "300",
    "shared_buffers": "32MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "4000",  # milliseconds
    "log_min_messages": "warning",
    "log_connections": "off",
}


class NamespacedPostgres:
    """initdb, pg_ctl start inside the database namespace as the postgres user, pg_ctl stop."""

    def __init__(self, binaries: Path, network: Network) -> None:
        self.binaries, self.network = binaries, network
        # tmp_path is closed to the postgres user, so the cluster lives in a folder of its own
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"

    @property
    def host_url(self) -> str:
        """The URL every host uses: over the veth network, to the switch's address."""
        return f"postgresql://postgres@{DATABASE_ADDRESS}:{PORT}/postgres"

    @property
    def test_url(self) -> str:
        """The URL of the test process: the Unix socket, which no link cut affects."""
        return f"postgresql://postgres@/postgres?host={self.folder}&port={PORT}"

    def _run(self, *command: str, namespace: bool = False) -> None:
        prefix = ["ip", "netns", "exec", self.network.database_namespace] if namespace else []
        full = [*prefix, "runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(full, capture_output=True, text=True, timeout=90)
        if result.returncode != 0:
            server_log = self.log.read_text() if self.log.exists() else "(no server log)"
            raise RuntimeError(
                f"`{' '.join(command)}` failed: {result.stderr.strip()}\n{server_log[-2000:]}"
            )

    def create(self) -> None:
        initdb = str(self.binaries / "initdb")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        with (self.data / "pg_hba.conf").open("a") as rules:
            rules.write(f"host all all {SUBNET}.0/24 trust\n")  # the hosts, and only they

    def start(self) -> None:
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        options += f" -k {self.folder} -p {PORT}"
        pg_ctl = str(self.binaries / "pg_ctl")
        command = [pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w"]
        self._run(*command, "-t", "60", "start", namespace=True)

    def stop(self, mode: str = "fast") -> None:
        pg_ctl = str(self.binaries / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def sweep_stale_folders() -> None:
    """Delete the cluster folders of earlier runs whose creating process is gone (a test
    killed outright; its server died with its namespace)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def namespaced_postgres(binaries: Path, network: Network) -> Iterator[NamespacedPostgres]:
    """A new cluster in the network's database namespace; stopped and deleted afterwards."""
    sweep_stale_folders()
    server = NamespacedPostgres(binaries, network)
    try:
        server.create()
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            server.stop("immediate")
        server.remove()
