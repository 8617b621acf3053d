"""A throw-away PostgreSQL cluster of a test's own, to stop, start and cut at will."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def postgres_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Nothing writes the WAL to disk but commits and the WAL writer: no background writer, no
# autovacuum (a test that stops the WAL writer decides what reaches the disk).
ONLY_COMMITS_WRITE_THE_WAL = ["bgwriter_lru_maxpages=0", "autovacuum=off"]


class PrivateServer:
    """A throw-away PostgreSQL cluster in a temporary folder, on a free port of its own."""

    def __init__(self, folder: Path, binaries: Path) -> None:
        self.folder, self.binaries = folder, binaries
        self.data = folder / "data"
        self.port = 0
        self.settings: list[str] = []  # more "name=value" settings for the next start
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *arguments: str) -> None:
        command = [*self.as_owner, str(self.binaries / program), *arguments]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in self.settings)
        log = str(self.folder / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def start_on_a_free_port(self) -> None:
        for _ in range(3):
            self.port = free_port()
            try:
                self.start()
                return
            except subprocess.CalledProcessError:
                continue  # the port was taken in between; try another
        raise RuntimeError(f"the private PostgreSQL did not start; see {self.folder}/server.log")

    def restart(self) -> None:
        """Stop (every connection dropped) and start again on the same port."""
        self.stop("fast")
        self.start()

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def answers(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def process(self, name: str) -> int:
        """The pid of one of the server's own processes: 'walwriter', 'checkpointer', ..."""
        postmaster = (self.data / "postmaster.pid").read_text().split()[0]
        command = ["pgrep", "-P", postmaster, "-f", f"postgres: {name}"]
        found = subprocess.run(command, check=True, capture_output=True, text=True, timeout=10)
        return int(found.stdout.split()[0])


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A new cluster, started; stopped and deleted afterwards."""
    binaries = postgres_binaries()
    folder = Path(tempfile.mkdtemp(prefix="jobengine-pg-"))  # tmp_path is closed to postgres
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivateServer(folder, binaries)
    try:
        server.create()
        server.start_on_a_free_port()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
