"""Per-job log capture: logging and print() from a job's thread go to that job's log only."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from jobengine.errors import DatabaseUnavailable
from jobengine.model import LogLine
from jobengine.settings import DEFAULT_LOG_CAP as DEFAULT_CAP

if TYPE_CHECKING:
    from jobengine.store.logs import LogStore

LONGEST_LINE = 64 * 1024  # characters of printed text without a newline written as one line
_sink = threading.local()
log = logging.getLogger("jobengine.worker")


def clean_text(text: str) -> str:
    """Text every backend can store: NUL bytes and lone surrogates written as escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


class PendingLine:
    """The pieces of one unfinished printed line, joined only once, when it is taken."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0

    def add(self, piece: str) -> None:
        if piece:
            self.pieces.append(piece)
            self.length += len(piece)

    def take(self) -> str:
        text = "".join(self.pieces)
        self.pieces, self.length = [], 0
        return text


class JobLog:
    """The log of one attempt of one job: lines go to a writer until the size cap is reached.

    Printed text is gathered into lines at linear cost: the pieces of an unfinished line are
    joined once, when its newline comes or as soon as they reach LONGEST_LINE characters; a
    line longer than that is written in pieces of LONGEST_LINE, each counted against the cap
    at once, so output without newlines is neither quadratic nor unbounded.
    """

    def __init__(
        self,
        job_id: int,
        attempt: int,
        emit: Callable[[LogLine], None],
        cap: int = DEFAULT_CAP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job_id, self.attempt, self.emit = job_id, attempt, emit
        self.cap, self.clock = cap, clock
        self.size = 0
        self.truncated = False
        self.pending: dict[str, PendingLine] = {}
        self.lock = threading.RLock()

    def write(self, level: str, text: str) -> None:
        with self.lock:
            if self.truncated:
                return
            text = clean_text(text)
            self.size += len(text.encode("utf-8")) + 1
            if self.size > self.cap:
                self.truncated = True
                text, level = f"[log truncated: more than {self.cap} bytes]", "WARNING"
            self.emit(LogLine(self.job_id, self.attempt, self.clock(), level, text))

    def write_stream(self, stream: str, text: str) -> None:
        """Collect printed text into lines (a line reaching LONGEST_LINE is written in pieces)."""
        if self.truncated or not text:
            return
        with self.lock:
            pending = self.pending.get(stream) or self.pending.setdefault(stream, PendingLine())
            if "\n" in text:
                *ended, text = text.split("\n")
                for piece in ended:
                    pending.add(piece)
                    self._write_long(stream, pending.take())
            pending.add(text)
            if pending.length >= LONGEST_LINE:
                unfinished = pending.take()
                whole = len(unfinished) - len(unfinished) % LONGEST_LINE
                self._write_long(stream, unfinished[:whole])
                pending.add(unfinished[whole:])

    def _write_long(self, stream: str, line: str) -> None:
        """One line, or pieces of LONGEST_LINE characters if it is longer; none once capped."""
        for start in range(0, max(len(line), 1), LONGEST_LINE):
            if self.truncated:
                return
            self.write(stream, line[start : start + LONGEST_LINE])

    def close(self) -> None:
        """Write what is left of each unfinished line."""
        with self.lock:
            for stream, pending in self.pending.items():
                if pending.length:
                    self._write_long(stream, pending.take())
            self.pending.clear()


def current_log() -> JobLog | None:
    return getattr(_sink, "log", None)


def attach(job_log: JobLog | None) -> None:
    """Route this thread's logging and printing to `job_log` (None stops it)."""
    _sink.log = job_log


class RoutingHandler(logging.Handler):
    """Sends records made in a job's thread to that job's log."""

    def handle(self, record: logging.LogRecord) -> bool:
        """Without the handler's own lock (the job's log has one): logging takes it a step
        before its `try`, so a cancel landing there in one job's thread would keep it taken
        and every other job's logging, and every worker line, would wait forever."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        job_log = current_log()
        if job_log is not None:
            job_log.write(record.levelname, self.format(record))


class NotFromJobs(logging.Filter):
    """Keeps job lines out of the worker's own log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return current_log() is None


class StreamRouter:
    """Stands in for sys.stdout/sys.stderr: a job thread's output goes to its log."""

    def __init__(self, name: str, original: TextIO) -> None:
        self.name, self.original = name, original

    def write(self, text: str) -> int:
        job_log = current_log()
        if job_log is None:
            return self.original.write(text)
        job_log.write_stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        if current_log() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_installed = 0
_install_lock = threading.Lock()
_handler = RoutingHandler()
_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))


def install() -> None:
    """Install the routing (once per process; counted, so nested workers are fine)."""
    global _installed
    with _install_lock:
        _installed += 1
        if _installed > 1:
            return
        logging.getLogger().addHandler(_handler)
        sys.stdout = StreamRouter("STDOUT", sys.stdout)
        sys.stderr = StreamRouter("STDERR", sys.stderr)


def uninstall() -> None:
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed > 0:
            return
        logging.getLogger().removeHandler(_handler)
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, StreamRouter):
                setattr(sys, name, stream.original)


class LogWriter:
    """Buffers log lines of every job and writes them to job_logs in batches."""

    def __init__(self, store: LogStore, batch: int = 500) -> None:
        self.store, self.batch = store, batch
        self.pending: list[LogLine] = []
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()

    def add(self, line: LogLine) -> None:
        with self.lock:
            self.pending.append(line)

    @property
    def buffered(self) -> int:
        """How many lines wait to be written."""
        with self.lock:
            return len(self.pending)

    def flush(self) -> None:
        """Write what is buffered; on a database outage keep it for the next flush."""
        with self.flush_lock:
            with self.lock:
                lines, self.pending = self.pending, []
            for start in range(0, len(lines), self.batch):
                try:
                    self._append(lines[start : start + self.batch])
                except DatabaseUnavailable:
                    with self.lock:
                        self.pending = lines[start:] + self.pending
                    raise

    def _append(self, lines: list[LogLine]) -> None:
        """One batch; if the database refuses it, keep every line it accepts and drop the rest."""
        try:
            self.store.append(lines)
        except DatabaseUnavailable:
            raise
        except Exception:
            if len(lines) == 1:
                log.exception("job %s: a log line could not be stored; dropped", lines[0].job_id)
                return
            for line in lines:
                self._append([line])
