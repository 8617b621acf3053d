"""Job types that resist stopping in every way we know; imported by tests and worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from jobengine import Engine


def cooperative(ctx: Any, seconds: float = 1e6) -> None:
    ctx.sleep(seconds)


def checking_loop(ctx: Any) -> None:
    while True:
        ctx.check_cancel()


def busy_loop() -> None:
    while True:
        pass


def sleep_forever() -> None:
    time.sleep(10**6)


def socket_read() -> None:
    left, right = socket.socketpair()
    left.recv(1)


def deadlock() -> None:
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()


def c_loop() -> None:
    sum(range(10**13))  # a C loop that never lets go of the GIL


def swallow_everything() -> None:
    while True:
        try:
            time.sleep(10**6)
        except BaseException:
            continue


def stubborn_child(pid_file: str) -> None:
    """Starts a grandchild that ignores SIGTERM and waits for it."""
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(10**6)"
    child = subprocess.Popen([sys.executable, "-c", code])
    with open(pid_file, "w") as file:
        file.write(str(child.pid))
    child.wait()


def quick(value: int = 0) -> int:
    return value


def short_sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "SUCCESS"


def terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


THREAD_TYPES = [cooperative, checking_loop, busy_loop, quick, short_sleep]
PROCESS_TYPES = [
    sleep_forever,
    socket_read,
    deadlock,
    c_loop,
    swallow_everything,
    stubborn_child,
    terminate_self,
]


def register(engine: Engine, **options: Any) -> Engine:
    """Register every type: thread ones as they are, the rest with process isolation."""
    for function in THREAD_TYPES:
        engine.job(function, **options)
    for function in PROCESS_TYPES:
        engine.job(isolation="process", **options)(function)
        engine.job(name=f"{function.__name__}_in_thread", **options)(function)
    engine.job(name="busy_loop_in_process", isolation="process", **options)(busy_loop)
    return engine


engine = register(Engine())
