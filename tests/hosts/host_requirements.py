"""What the multi-host tests need from the machine: root, iproute2, util-linux, faketime."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

FAKETIME_LIBRARY_PATTERNS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/*-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
PROGRAMS = ("ip", "unshare", "runuser", "hostname")
FIX = (
    "run the multi-host tests as root on Linux with: apt-get install -y iproute2 util-linux "
    "hostname faketime postgresql"
)


def _missing_or_skip(problem: str) -> None:
    """Fail when CI is set (the CI machine must have everything), else skip."""
    message = f"multi-host tests cannot run: {problem}; {FIX}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def faketime_library() -> Path | None:
    for pattern in FAKETIME_LIBRARY_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


def postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_machine() -> tuple[Path, Path]:
    """Check everything once per test; return (PostgreSQL's bin folder, libfaketime)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        _missing_or_skip("they must run as root (network namespaces, veth pairs, runuser)")
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    if missing:
        _missing_or_skip(f"programs not found on PATH: {', '.join(missing)}")
    binaries = postgres_binaries()
    if binaries is None:
        _missing_or_skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    library = faketime_library()
    if library is None:
        _missing_or_skip("libfaketime.so.1 (Debian package faketime) is not installed")
    if not Path("/run").is_dir():
        _missing_or_skip("/run does not exist, so `ip netns` cannot keep its namespaces")
    assert binaries is not None and library is not None
    return binaries, library
