"""Faults of the database itself for the fault tests: a SQLite write lock held by another
process, a private PostgreSQL that refuses connections; and the app their workers run."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from private_postgres import PrivateServer

# The --app module of the fault tests' worker processes. `nap` sleeps cooperatively; `spin`
# loops until stopped and writes the moment it was stopped to a file, so a test can tell when
# the stop landed even while the database is out.
APP_SOURCE = '''
"""Job types for the fault tests."""
import os
import time

from jobengine import Engine, JobCanceled


def nap(ctx, seconds: float) -> int:
    ctx.sleep(seconds)
    return os.getpid()


def spin(ctx, marker: str) -> None:
    try:
        while True:
            time.sleep(0.01)
    except JobCanceled:
        with open(marker, "w") as file:
            file.write(repr(time.time()))
        raise


def register(engine):
    engine.job(nap, max_attempts=3)
    engine.job(spin, timeout=2)
    return engine


engine = register(Engine())
'''

HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        with contextlib.suppress(OSError):
            holder.stdin.write("\n")
            holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()


@contextlib.contextmanager
def refused_connections(server: PrivateServer) -> Iterator[None]:
    """The private server is down (connections refused) until the block ends."""
    server.stop("fast")
    try:
        yield
    finally:
        server.start()
