"""Wake-ups between processes for SQLite: real listener processes, real sockets, real files."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from waiting import wait_for

from jobengine.errors import ConfigurationError
from jobengine.store.wakeup import SOCKET_PATH_LIMIT, Wakeup, wakeup_folder

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "jobengine"
LISTENER = """
import sys, threading
from jobengine.store.wakeup import Wakeup
stop = threading.Event()
def heard(payload):
    print(repr(payload), flush=True)
    if payload == "stop":
        stop.set()
Wakeup(sys.argv[1]).listen(sys.argv[2], heard, stop)
"""
NOTIFIER = """
import sys
from jobengine.store.wakeup import Wakeup
with Wakeup(sys.argv[1]) as wakeup:
    print(wakeup.notify(sys.argv[2], sys.argv[3]), flush=True)
"""


def python(code: str, *arguments: str) -> tuple[list[str], dict[str, str]]:
    """A command running `code` with this tree's jobengine, and its environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [sys.executable, "-c", code, *arguments], env


class ListenerProcess:
    """A listener in a child process; each payload it hears becomes one line of its output."""

    def __init__(self, database: Path, channel: str = CHANNEL) -> None:
        command, env = python(LISTENER, str(database), channel)
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        self.heard: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: self.heard == ["''"], 30, "the listener to start listening")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.heard.append(line.strip())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextmanager
def listener_process(database: Path, channel: str = CHANNEL) -> Iterator[ListenerProcess]:
    listener = ListenerProcess(database, channel)
    try:
        yield listener
    finally:
        listener.stop()


@contextmanager
def listener_thread(database: Path) -> Iterator[list[str]]:
    """A listener in a thread of this process; yields the payloads it hears."""
    heard: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=Wakeup(str(database)).listen, args=(CHANNEL, heard.append, stop), daemon=True
    )
    thread.start()
    wait_for(lambda: heard == [""], 10, "the listener to start listening")
    try:
        yield heard
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the listener did not stop"


def notify(database: Path, payload: str, channel: str = CHANNEL) -> int:
    with Wakeup(str(database)) as wakeup:
        return wakeup.notify(channel, payload)


def notify_from_another_process(database: Path, payload: str) -> int:
    command, env = python(NOTIFIER, str(database), CHANNEL, payload)
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert output.returncode == 0, output.stderr
    return int(output.stdout)


def sockets(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sock")) if folder.is_dir() else []


@pytest.fixture
def database() -> Iterator[Path]:
    """A database path short enough for its sockets to sit beside it (pytest's are not)."""
    with tempfile.TemporaryDirectory(prefix="wakeup-") as folder:
        yield Path(folder) / "jobs.db"


def test_a_notify_wakes_a_listener_in_another_process(database: Path) -> None:
    with listener_process(database) as listener:
        assert notify(database, "default") == 1
        wait_for(lambda: "'default'" in listener.heard, 10, "the listener to hear the notify")
        assert listener.heard == ["''", "'default'"]


def test_a_notify_from_another_process_wakes_a_listener_here(database: Path) -> None:
    with listener_thread(database) as heard:
        assert notify_from_another_process(database, "cancel") == 1
        wait_for(lambda: "cancel" in heard, 10, "the listener to hear the notify")
    assert sockets(wakeup_folder(str(database))) == [], "the listener left its socket behind"


def test_every_listener_hears_and_other_channels_are_ignored(database: Path) -> None:
    with listener_process(database) as first, listener_process(database) as second:
        with Wakeup(str(database)) as wakeup:
            assert wakeup.notify("another-channel", "not for us") == 2
            assert wakeup.notify(CHANNEL, "default") == 2
        for listener in (first, second):
            wait_for(lambda listener=listener: len(listener.heard) == 2, 10, "both to hear it")
            assert listener.heard == ["''", "'default'"]


def test_the_folder_sits_beside_the_database_whatever_its_spelling(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(database.parent)
    assert wakeup_folder("jobs.db") == wakeup_folder(str(database))
    assert wakeup_folder(str(database)) == Path(os.path.realpath(database) + ".wakeup")


def test_a_socket_left_by_a_killed_listener_is_removed_and_the_live_one_still_hears(
    database: Path,
) -> None:
    folder = wakeup_folder(str(database))
    with listener_process(database) as live:
        doomed = ListenerProcess(database)
        doomed.process.send_signal(signal.SIGKILL)
        doomed.stop()
        assert len(sockets(folder)) == 2, "a killed listener cannot remove its own socket"
        assert notify(database, "default") == 1
        wait_for(lambda: "'default'" in live.heard, 10, "the live listener to hear it")
        assert len(sockets(folder)) == 1, "the dead listener's socket is still there"


def test_stale_files_are_removed_and_other_files_are_left_alone(database: Path) -> None:
    folder = wakeup_folder(str(database))
    folder.mkdir()
    stale = folder / "1-deadbeef.sock"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bound.bind(str(stale))
    bound.close()  # the file stays, nobody reads it
    unrelated = folder / "notes.sock"
    unrelated.write_text("not a socket")
    assert notify(database, "default") == 0
    assert not stale.exists()
    assert unrelated.read_text() == "not a socket"


def test_a_path_too_long_for_a_socket_uses_a_hashed_folder_in_the_temporary_directory(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    database = deep / "jobs.db"
    assert len(os.fsencode(f"{database}.wakeup/")) > SOCKET_PATH_LIMIT
    folder = wakeup_folder(str(database))
    assert folder.parent == Path(tempfile.gettempdir())
    try:
        with listener_process(database) as listener:
            assert notify_from_another_process(database, "default") == 1
            wait_for(lambda: "'default'" in listener.heard, 10, "the listener to hear it")
            assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    finally:
        for leftover in sockets(folder):
            leftover.unlink()
        folder.rmdir()


def test_a_temporary_directory_too_long_even_for_the_hash_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_temp = tmp_path / ("t" * 100)
    monkeypatch.setattr(tempfile, "tempdir", str(long_temp))
    with pytest.raises(ConfigurationError, match="set TMPDIR to a shorter folder"):
        wakeup_folder(str(long_temp / "jobs.db"))


def test_a_folder_that_cannot_be_made_falls_back_to_polling_with_a_log_line(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Path(f"{database}.wakeup").write_text("a file where the folder should be")
    heard: list[str] = []
    stop = threading.Event()
    listen = threading.Thread(
        target=Wakeup(str(database)).listen, args=(CHANNEL, heard.append, stop)
    )
    with caplog.at_level(logging.WARNING, logger="jobengine.store"):
        listen.start()
        listen.join(10)
    assert not listen.is_alive(), "listen should give up at once, not wait for stop"
    assert heard == []
    [record] = [r for r in caplog.records if "wake-ups between processes are off" in r.message]
    assert "polling" in record.message and "not a folder" in record.message
    assert notify(database, "default") == 0


def test_a_missing_database_folder_falls_back_to_polling_too(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = database.parent / "absent" / "jobs.db"
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger="jobengine.store"):
        Wakeup(str(database)).listen(CHANNEL, lambda payload: None, stop)
    assert any("polling" in record.message for record in caplog.records)
    assert notify(database, "default") == 0


def test_a_burst_beyond_the_socket_queue_never_blocks_the_notifier(database: Path) -> None:
    """A listener that does not read fills its queue; notify drops the rest instead of
    waiting, and what was queued is still there to read."""
    folder = wakeup_folder(str(database))
    folder.mkdir()
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    slow.bind(str(folder / "2-cafecafe.sock"))
    try:
        with Wakeup(str(database)) as wakeup:
            taken = [wakeup.notify(CHANNEL, "default") for _ in range(1000)]
        assert 0 < sum(taken) < 1000
        assert slow.recv(100) == f"{CHANNEL}\0default".encode()
    finally:
        slow.close()


@pytest.mark.timeout(30)
def test_a_closed_wakeup_sends_nothing_and_opens_no_socket(database: Path) -> None:
    heard: list[str] = []
    stop = threading.Event()
    listener = threading.Thread(
        target=Wakeup(str(database)).listen, args=(CHANNEL, heard.append, stop), daemon=True
    )
    listener.start()
    wait_for(lambda: "" in heard, 10, "the listener to be ready")
    wakeup = Wakeup(str(database))
    assert wakeup.notify(CHANNEL, "before") == 1
    wakeup.close()
    assert wakeup.notify(CHANNEL, "after") == 0
    assert wakeup._sender is None
    stop.set()
    listener.join(5)


@contextmanager
def bound_socket(folder: Path, name: str) -> Iterator[socket.socket]:
    """A listener's socket without its process: bound in `folder`, read by the test."""
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(str(folder / name))
        receiver.setblocking(False)
        yield receiver
    finally:
        receiver.close()


def settle(folder: Path) -> None:
    """Date the folder's last change a second back, as if it was made long ago."""
    changed = folder.stat().st_mtime_ns - 1_000_000_000
    os.utime(folder, ns=(changed, changed))


def heard(receiver: socket.socket) -> list[str]:
    payloads = []
    with contextlib.suppress(BlockingIOError):
        while True:
            payloads.append(receiver.recv(100).decode().partition("\0")[2])
    return payloads


def test_a_listing_kept_between_notifies_follows_every_bind_and_unlink(database: Path) -> None:
    folder = wakeup_folder(str(database))
    folder.mkdir()
    with bound_socket(folder, "3-00000001.sock") as first, Wakeup(str(database)) as wakeup:
        settle(folder)
        assert wakeup.notify(CHANNEL, "one") == 1  # listed, and kept: the folder is settled
        with bound_socket(folder, "3-00000002.sock") as second:
            assert wakeup.notify(CHANNEL, "two") == 2  # the bind changed the folder
            settle(folder)
            assert wakeup.notify(CHANNEL, "three") == 2
            assert heard(second) == ["two", "three"]
            (folder / "3-00000002.sock").unlink()
        assert wakeup.notify(CHANNEL, "four") == 1
        assert heard(first) == ["one", "two", "three", "four"]


def test_a_listing_taken_just_after_a_change_is_not_kept(database: Path) -> None:
    """A bind within the same tick of the folder's clock leaves its time unchanged; a listing
    made that soon after a change is taken again next time."""
    folder = wakeup_folder(str(database))
    folder.mkdir()
    (folder / "3-00000000.sock").touch()  # a stale non-socket file, left alone
    changed = folder.stat().st_mtime_ns
    with Wakeup(str(database)) as wakeup:
        assert wakeup.notify(CHANNEL, "one") == 0
        (folder / "3-00000000.sock").unlink()
        with bound_socket(folder, "3-00000001.sock") as listener:
            os.utime(folder, ns=(changed, changed))  # the bind in the same tick: no new time
            assert wakeup.notify(CHANNEL, "two") == 1
            assert heard(listener) == ["two"]
