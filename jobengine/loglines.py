"""One log record for a batch of alike lines: each job keeps its own line at a record's cost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence


class Lines:
    """A log message of `template % row` for each row and template, a row's lines together."""

    __slots__ = ("rows", "templates")

    def __init__(self, rows: Sequence[tuple[object, ...]], templates: Sequence[str]) -> None:
        self.rows, self.templates = rows, templates

    def lines(self) -> list[str]:
        return [template % row for row in self.rows for template in self.templates]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def log_lines(logger: logging.Logger, rows: Sequence[tuple[object, ...]], *templates: str) -> None:
    """Log `template % row` for every row and template at INFO, as one record (a worker's
    moves of one batch: formatting and writing a record per move would cost more than the
    moves themselves)."""
    if rows and logger.isEnabledFor(logging.INFO):
        logger.info(Lines(rows, templates))


def with_heads(record: logging.LogRecord, format_record: Callable[[logging.LogRecord], str]) -> str:
    """`format_record(record)`; for a `Lines` message, every line with the head (time, level,
    logger) a line of its own would have."""
    message = record.msg
    if not isinstance(message, Lines):
        return format_record(record)
    record.msg = ""
    try:
        head = format_record(record)
    finally:
        record.msg = message
    return "\n".join(head + line for line in message.lines())
