"""Wake-ups between processes on one host for SQLite: a Unix datagram socket per listener.

Each listening process binds a socket in the folder of the database file (`wakeup_folder`).
`notify` sends one datagram to every socket in the folder, after the writer's commit; it never
blocks and never raises. Wake-ups are only a shortcut: a datagram can be dropped (a listener
that is not reading, a folder that cannot be made), so workers keep polling as the fallback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import secrets
import select
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from threading import Event, Lock
from typing import NamedTuple

from jobengine.errors import ConfigurationError

log = logging.getLogger("jobengine.store")

SOCKET_PATH_LIMIT = 107  # bytes of a Unix socket path on Linux (108 with the final NUL)
NAME_LENGTH = 24  # room kept for a listener's file name: "<pid>-<8 hex>.sock"
SUFFIX = ".sock"
SEPARATOR = "\0"  # between the channel and the payload in a datagram
MAX_DATAGRAM = 8192  # PostgreSQL's NOTIFY payload limit, kept here too
STOP_CHECK = 0.25  # seconds between looks at `stop` while nothing arrives
HASHED_PREFIX = "jobengine-wakeup-"  # a folder under the shared temporary directory
# A folder's modification time ticks with the kernel's coarse clock (a few milliseconds), so a
# listing taken less than this long after the last change may miss one within the same tick.
SETTLED_NS = 100_000_000


def wakeup_folder(database_path: str) -> Path:
    """Where the listeners of this database file bind their sockets.

    `<database>.wakeup/` beside the file (so processes that share the file share the folder,
    whatever their temporary directory), or `<tmp>/jobengine-wakeup-<hash>/` when a socket
    path there would exceed the limit. Every spelling of one file gives the same folder.
    """
    real = os.path.realpath(database_path)
    beside = Path(real + ".wakeup")
    if _fits(beside):
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:24]
    hashed = Path(tempfile.gettempdir()) / f"{HASHED_PREFIX}{digest}"
    if _fits(hashed):
        return hashed
    raise ConfigurationError(
        f"no folder for wake-up sockets of {real!r}: even {str(hashed)!r} is too long for a "
        f"socket path ({SOCKET_PATH_LIMIT} bytes); set TMPDIR to a shorter folder"
    )


def _fits(folder: Path) -> bool:
    return len(os.fsencode(str(folder))) + 1 + NAME_LENGTH <= SOCKET_PATH_LIMIT


class Wakeup:
    """`notify` and `listen` for one SQLite database file, shaped like `Database`'s own."""

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._sender: socket.socket | None = None
        self._listing: tuple[int, list[Listener]] = (-1, [])  # (folder's mtime_ns, sockets)
        self._closed = False  # a closed database wakes nobody (no socket left to leak)
        self._lock = Lock()

    @functools.cached_property
    def folder(self) -> Path:
        return wakeup_folder(self.database_path)

    def notify(self, channel: str, payload: str = "") -> int:
        """Send `payload` on `channel` to every listener of this database; return how many
        sockets took it. Never blocks, never raises; removes sockets whose listener is gone."""
        data = f"{channel}{SEPARATOR}{payload}".encode()[:MAX_DATAGRAM]
        try:
            listeners = self._listeners()
        except (OSError, ConfigurationError):
            return 0  # no folder: nobody has listened yet (or nobody can)
        with self._lock:
            if self._closed:
                return 0
            if self._sender is None:
                try:
                    self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sender.setblocking(False)
                except OSError as error:
                    log.debug("no socket for wake-ups: %s", error)
                    return 0
            sender = self._sender
        return sum(_send(sender, listener, data) for listener in listeners)

    def _listeners(self) -> list[Listener]:
        """The sockets in the folder, listed again only when the folder changed since (a bind,
        an unlink): a notify then costs one stat of the folder, not a listing and a stat each."""
        listed_at, changed = time.time_ns(), os.stat(self.folder).st_mtime_ns
        cached_change, cached = self._listing
        if changed == cached_change:
            return cached
        listeners = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(SUFFIX):
                with contextlib.suppress(OSError):  # gone meanwhile
                    facts = entry.stat(follow_symlinks=False)
                    if stat.S_ISSOCK(facts.st_mode):
                        listeners.append(Listener(entry.path, facts.st_ino, facts.st_dev))
        settled = listed_at - changed > SETTLED_NS  # no change can hide in the same tick
        self._listing = (changed if settled else -1, listeners)
        return listeners

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: Event) -> None:
        """Call `on_notify(payload)` for each notification on `channel` until `stop` is set.

        Calls `on_notify("")` once when listening starts (anything sent before was missed).
        When the folder or the socket cannot be made, logs why and returns at once: the
        caller's polling then finds the work, a little later.
        """
        try:
            receiver, path = self._bind()
        except (OSError, ConfigurationError) as error:
            message = "wake-ups between processes are off for %s (%s); workers find new jobs by"
            log.warning(message + " polling instead", self.database_path, error)
            return
        try:
            on_notify("")
            while not stop.is_set():
                readable, _, _ = select.select([receiver], [], [], STOP_CHECK)
                if readable:
                    for payload in _drain(receiver, channel):
                        on_notify(payload)
        finally:
            receiver.close()
            with contextlib.suppress(OSError):
                path.unlink()

    def _bind(self) -> tuple[socket.socket, Path]:
        folder = self.folder
        _make_folder(folder, private=folder.name.startswith(HASHED_PREFIX))
        path = folder / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            receiver.bind(str(path))
            receiver.setblocking(False)
        except OSError:
            receiver.close()
            raise
        return receiver, path

    def close(self) -> None:
        """Close the socket `notify` sends from; later notifies send nothing."""
        with self._lock:
            self._closed = True
            if self._sender is not None:
                self._sender.close()
                self._sender = None

    def __enter__(self) -> Wakeup:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


class Listener(NamedTuple):
    """A listener's socket file, as it was when the folder was listed."""

    path: str
    inode: int
    device: int


def _send(sender: socket.socket, listener: Listener, data: bytes) -> int:
    try:
        sender.sendto(data, listener.path)
        return 1
    except ConnectionRefusedError:  # a file left by a listener that died: nobody reads it
        _remove_if_unchanged(listener)
    except BlockingIOError:
        pass  # its queue is full: that listener has wake-ups waiting already
    except OSError as error:  # gone meanwhile, not ours to write, ...
        if error.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            log.debug("wake-up to %s not sent: %s", listener.path, error)
    return 0


def _make_folder(folder: Path, private: bool) -> None:
    """Create the folder; one under the shared temporary directory must be ours alone."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700 if private else 0o777)
    facts = folder.lstat()
    if not stat.S_ISDIR(facts.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(folder))
    if private and facts.st_uid != os.getuid():
        raise PermissionError(errno.EPERM, "belongs to another user", str(folder))


def _drain(receiver: socket.socket, channel: str) -> list[str]:
    """Every datagram waiting, as the distinct payloads on `channel`, in arrival order."""
    payloads: dict[str, None] = {}
    while True:
        try:
            data = receiver.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return list(payloads)
        name, _, payload = data.decode(errors="replace").partition(SEPARATOR)
        if name == channel:
            payloads[payload] = None


def _remove_if_unchanged(listener: Listener) -> None:
    """Remove a dead listener's socket file, unless a new file took its name meanwhile."""
    with contextlib.suppress(OSError):
        now = os.lstat(listener.path)
        if (now.st_ino, now.st_dev) == (listener.inode, listener.device):
            os.unlink(listener.path)
