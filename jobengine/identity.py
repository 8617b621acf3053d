"""Which process a worker is, for sure: the kernel's boot, the start in ticks, the pid namespace.

Neither the wall clock (which can be stepped) nor the host name (which containers share) can
tell whether the process that registered a worker still lives: the kernel's own counts can.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessIdentity:
    boot_id: str | None
    start_ticks: int | None
    pid_namespace: str | None


def boot_id() -> str | None:
    """The kernel's id of this boot (changes at every reboot)."""
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as file:
        return file.read().strip()
    return None


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, from the state (field 3) on."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            text = file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since the boot: a clock step does not move it."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22 of the whole line


def pid_namespace(pid: int | str = "self") -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/pid")
    return None


def of_this_process() -> ProcessIdentity:
    return ProcessIdentity(boot_id(), start_ticks(os.getpid()), pid_namespace())


def is_gone(pid: int, identity: ProcessIdentity) -> bool | None:
    """Whether the process `pid` with `identity` has ended, judged from this process.

    None when this process cannot tell: the identity is unknown, or the worker ran in another
    pid namespace (another container with the same host name), where its pid means nothing here.
    """
    here = of_this_process()
    if identity.start_ticks is None or identity.boot_id != here.boot_id:
        return None  # another machine that shares the host name, or a boot since
    if identity.pid_namespace != here.pid_namespace:
        return None
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":  # no such process, or a zombie: it has ended
        return True
    return int(fields[19]) != identity.start_ticks  # the pid now names another process
