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
    print("started", flush=True)
    ctx.sleep(seconds)


def checking_loop(ctx: Any) -> None:
    print("started", flush=True)
    while True:
        ctx.check_cancel()


def busy_loop() -> None:
    print("started", flush=True)
    while True:
        pass


def sleep_forever() -> None:
    print("started", flush=True)
    time.sleep(10**6)


def socket_read() -> None:
    print("started", flush=True)
    left, _right = socket.socketpair()
    left.recv(1)


def deadlock() -> None:
    print("started", flush=True)
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()


def c_loop() -> None:
    print("started", flush=True)
    sum(range(10**13))  # a C loop that never lets go of the GIL


def swallow_everything() -> None:
    print("started", flush=True)
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


def wait_until_started(engine: Engine, job_id: int, timeout: float = 20.0) -> None:
    """Wait for the job's first log line: its code (not just its status) is running."""
    from waiting import wait_for

    wait_for(
        lambda: any(line.text == "started" for line in engine.log(job_id)),
        timeout,
        f"job {job_id} to start running its code",
    )


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
