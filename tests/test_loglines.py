"""A batch's moves as one log record: every job keeps its own line, each with its head."""

from __future__ import annotations

import logging

import pytest

from jobengine.cli.worker import PasswordFreeFormatter
from jobengine.loglines import Lines, log_lines

HEAD = "%(levelname)s %(name)s: %(message)s"


def record_of(message: object) -> logging.LogRecord:
    return logging.LogRecord("jobengine.worker", logging.INFO, __file__, 1, message, None, None)


def test_each_row_gives_its_lines_together_in_the_order_of_the_templates() -> None:
    lines = Lines([(7, "add"), (8, "mail")], ["claim job %s (%s)", "start job %s (%s)"])
    assert str(lines).splitlines() == [
        "claim job 7 (add)",
        "start job 7 (add)",
        "claim job 8 (mail)",
        "start job 8 (mail)",
    ]


def test_the_worker_log_gives_every_line_its_own_head_and_hides_passwords() -> None:
    formatter = PasswordFreeFormatter(HEAD, ["postgresql://u:Secret99@db/x"])
    lines = Lines([(7, "Secret99"), (8, "ok")], ["finish job %s (%s)"])
    assert formatter.format(record_of(lines)).splitlines() == [
        "INFO jobengine.worker: finish job 7 (***)",
        "INFO jobengine.worker: finish job 8 (ok)",
    ]
    assert formatter.format(record_of("one line")) == "INFO jobengine.worker: one line"


def test_nothing_is_logged_below_the_level_or_without_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("jobengine.test-lines")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        log_lines(logger, [(1,)], "start job %s")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_lines(logger, [], "start job %s")
        log_lines(logger, [(2,), (3,)], "start job %s")
    assert [record.getMessage() for record in caplog.records] == ["start job 2\nstart job 3"]
