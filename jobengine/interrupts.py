"""Where the cancel exception may land in a job's thread: anywhere but inside engine code; and
the one event a signal handler may set, wherever it interrupts its thread."""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator


class JobCanceled(BaseException):
    """Raised inside a job that is being stopped (cancel, timeout or shutdown).

    It derives from BaseException so that `except Exception:` in job code does not swallow it.
    """


class SignalEvent(threading.Event):
    """A threading.Event that a signal handler may set. The handler runs in the main thread
    between two of its steps, possibly while that thread holds the Event's lock for a moment
    (inside `wait` or `clear`); on threading.Event's plain lock, `set` would then wait for its
    own thread forever and the process could no longer be stopped. Here the lock is reentrant.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition(threading.RLock())


class _Shield:
    """One thread's count of open shields, and whether an interrupt waits for the last one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.pending = False


_shields: dict[int, _Shield] = {}
_shields_lock = threading.Lock()


def _shield_of(thread_id: int) -> _Shield:
    with _shields_lock:
        shield = _shields.get(thread_id)
        if shield is None:
            shield = _shields[thread_id] = _Shield()
        return shield


def raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> bool:
    """Raise `exception` asynchronously in a thread (None clears a pending one)."""
    target = ctypes.py_object(exception) if exception is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)
    return bool(changed == 1)


def interrupt(thread_id: int) -> bool:
    """Raise JobCanceled in a thread now, or as it leaves engine code if it is inside it.

    Engine code that holds a connection (a transaction, a pooled connection) runs shielded: an
    exception landing there could leave a transaction open and lock every writer out.
    """
    shield = _shield_of(thread_id)
    with shield.lock:
        if shield.depth > 0:
            shield.pending = True
            return True
        return raise_in_thread(thread_id, JobCanceled)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run engine code that no interrupt may cut short; a deferred one is raised at the end."""
    shield = _shield_of(threading.get_ident())
    entered = False
    try:
        with shield.lock:  # an interrupt sent before this point lands here, before any work
            shield.depth += 1
            entered = True
        yield
    finally:
        if entered:
            with shield.lock:
                shield.depth -= 1
                deliver = shield.depth == 0 and shield.pending
                shield.pending = shield.pending and not deliver
            if deliver:
                raise JobCanceled("canceled")


def forget(thread_id: int) -> None:
    """Drop a thread's shield state and any deferred interrupt (its job has ended)."""
    shield = _shield_of(thread_id)
    with shield.lock:
        shield.pending = False
