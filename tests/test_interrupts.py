"""The event a signal handler may set: it lands even while its own thread holds the event's lock."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from jobengine.interrupts import SignalEvent

# A signal handler that sets the event, raised while the main thread holds the event's lock for
# a moment, as it does inside wait() and clear(): the handler runs right there, in that thread.
HANDLER_INSIDE_THE_LOCK = """
import signal, threading
from jobengine.interrupts import SignalEvent
event = {kind}()
signal.signal(signal.SIGUSR2, lambda number, frame: event.set())
with event._cond:
    signal.raise_signal(signal.SIGUSR2)
print("set" if event.is_set() else "not set", flush=True)
"""


def run_handler_inside_the_lock(kind: str) -> subprocess.Popen[str]:
    script = HANDLER_INSIDE_THE_LOCK.format(kind=kind)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_handler_sets_it_while_its_thread_holds_the_lock() -> None:
    process = run_handler_inside_the_lock("SignalEvent")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert output.strip() == "set"


def test_the_plain_event_would_hang_there_which_is_the_fault_this_guards() -> None:
    process = run_handler_inside_the_lock("threading.Event")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=2)  # a deadline for a hang: it never ends by itself
    finally:
        process.kill()
        process.communicate(timeout=30)


def test_it_is_an_event_across_threads() -> None:
    event = SignalEvent()
    assert not event.wait(0.01)
    woken = threading.Event()
    waiter = threading.Thread(target=lambda: event.wait(30) and woken.set(), daemon=True)
    waiter.start()
    event.set()
    assert woken.wait(30), "a waiting thread was not woken by set()"
    waiter.join(30)
    assert event.is_set() and event.wait(0)
    event.clear()
    assert not event.is_set()
