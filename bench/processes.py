"""Real `jobengine worker` processes for the benchmarks, started and stopped cleanly."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from jobengine.store import Store

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a process gets when its parent ends


def stop_with_parent() -> None:
    """Run in the child before it starts: SIGTERM (a drain) when the process that started it
    ends, however it ends. A driver killed after its stop timeout left its worker running,
    and that worker then took jobs in the later measurements on the same database."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def worker_process(
    url: str, poll_interval: float, concurrency: int = 10, log_file: str = ""
) -> Iterator[int]:
    """A worker process serving `url` (its own log in `log_file`, none if empty); yields its
    pid once it has registered."""
    command = [sys.executable, "-m", "jobengine", "--app", "bench.app", "--database-url", url]
    command += ["worker", "--poll-interval", str(poll_interval)]
    command += ["--concurrency", str(concurrency), "--log-file", log_file]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=output, stderr=output, preexec_fn=stop_with_parent
        )
        try:
            wait_until_registered(url, process, output)
            yield process.pid
        finally:
            stop(process)


def wait_until_registered(url: str, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    store = Store.open(url, pool_size=1)
    try:
        deadline = time.monotonic() + 60
        while not any(record.pid == process.pid for record in store.workers.find()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the benchmark worker did not start: {tail(output)}")
            time.sleep(0.05)
    finally:
        store.close()


def tail(output: IO[bytes]) -> str:
    """The end of what the worker printed, to say why it did not start."""
    output.seek(0)
    return output.read()[-2000:].decode(errors="replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (drain), then SIGKILL if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
