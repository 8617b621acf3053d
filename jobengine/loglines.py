"""One log record for a batch of alike lines: each job keeps its own line at a record's cost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence


class Lines:
    """A log message of one line per row, `template % row`; printed as those lines."""

    __slots__ = ("rows", "template")

    def __init__(self, template: str, rows: Sequence[tuple[object, ...]]) -> None:
        self.template, self.rows = template, rows

    def lines(self) -> list[str]:
        return [self.template % row for row in self.rows]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def log_lines(logger: logging.Logger, template: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Log `template % row` for every row at INFO, as one record (a worker's moves of one
    batch: formatting and writing 50 records would cost more than the moves themselves)."""
    if rows and logger.isEnabledFor(logging.INFO):
        logger.info(Lines(template, rows))


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
