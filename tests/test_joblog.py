"""Per-job logs: captured per thread, never mixed, size-capped, and read with `jobengine log`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.cli import main
from jobengine.context import JobContext
from jobengine.joblog import JobLog, LogWriter
from jobengine.store import LogLine
from jobengine.worker import Settings, Worker

pytestmark = pytest.mark.timeout(90)
JOBS, LINES = 50, 100


@pytest.fixture
def live_engine(database_url: str) -> Iterator[Engine]:
    engine = Engine(database_url)
    yield engine
    engine.close()


# -- JobLog on its own ----------------------------------------------------------------------------


def collecting_log(cap: int) -> tuple[JobLog, list[LogLine]]:
    lines: list[LogLine] = []
    return JobLog(3, 1, lines.append, cap=cap, clock=lambda: 5.0), lines


def test_printed_text_is_gathered_into_whole_lines() -> None:
    job_log, lines = collecting_log(cap=1000)
    for piece in ["one", " line\ntwo\n", "", "thr", "ee"]:
        job_log.write_stream("STDOUT", piece)
    job_log.write_stream("STDERR", "apart\n")
    assert [(line.level, line.text) for line in lines] == [
        ("STDOUT", "one line"),
        ("STDOUT", "two"),
        ("STDERR", "apart"),
    ]
    job_log.close()
    assert lines[-1].text == "three", "close() keeps an unfinished last line"


def test_the_size_cap_ends_the_log_with_a_marker_line() -> None:
    job_log, lines = collecting_log(cap=100)
    for number in range(30):
        job_log.write("INFO", f"line {number:03}")  # 8 bytes + newline each
    texts = [line.text for line in lines]
    assert texts[:-1] == [f"line {number:03}" for number in range(11)]
    assert texts[-1] == "[log truncated: more than 100 bytes]"
    assert lines[-1].level == "WARNING"


def test_the_log_writer_keeps_what_the_database_accepts(live_engine: Engine) -> None:
    writer = LogWriter(live_engine.store.logs, batch=10)
    for number in range(25):
        text = "unstorable \udcff" if number == 12 else f"line {number}"
        writer.add(LogLine(99, 1, 1.0, "INFO", text))
    writer.flush()
    expected = [f"line {number}" for number in range(25) if number != 12]
    assert [line.text for line in live_engine.log(99)] == expected
    assert writer.pending == []


# -- capture through a real worker ----------------------------------------------------------------


def register_chatty(engine: Engine, barrier: threading.Barrier) -> None:
    """A job that logs LINES numbered lines, one in three each through ctx.log, a library, print."""

    @engine.job
    def chatty(ctx: JobContext, number: int) -> None:
        barrier.wait()  # every job is running before any of them logs
        library = logging.getLogger("chatty.library")
        for line in range(LINES):
            text = f"job {number} line {line}"
            if line % 3 == 0:
                ctx.log.info(text)
            elif line % 3 == 1:
                library.warning(text)
            else:
                print(text)
            if line % 10 == 0:
                time.sleep(0.001)  # let the other threads in


def expected_lines(number: int) -> list[tuple[str, str]]:
    kinds = [("INFO", "job.chatty: "), ("WARNING", "chatty.library: "), ("STDOUT", "")]
    return [
        (kinds[line % 3][0], f"{kinds[line % 3][1]}job {number} line {line}")
        for line in range(LINES)
    ]


def test_fifty_concurrent_job_logs_never_mix(live_engine: Engine) -> None:
    register_chatty(live_engine, threading.Barrier(JOBS, timeout=30))
    worker = Worker(live_engine, Settings(concurrency=JOBS, poll_interval=0.1))
    thread = threading.Thread(target=worker.run, name="worker-under-test")
    thread.start()
    try:
        ids = [live_engine.submit("chatty", number=number) for number in range(JOBS)]
        wait_for(lambda: all(live_engine.get(job_id).status.terminal for job_id in ids))
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    for number, job_id in enumerate(ids):
        assert live_engine.get(job_id).status is Status.SUCCESS
        log = [(line.level, line.text) for line in live_engine.log(job_id)]
        assert log == expected_lines(number), f"job {job_id} has a mixed or incomplete log"


def test_the_job_log_is_capped_by_the_worker_setting(engine: Engine) -> None:
    @engine.job
    def verbose(ctx: JobContext) -> None:
        for number in range(500):
            print(f"line {number:03}")

    job_id = engine.submit("verbose")
    Worker(engine, Settings(log_cap=200)).drain()
    assert engine.get(job_id).status is Status.SUCCESS
    texts = [line.text for line in engine.log(job_id)]
    assert texts[:-1] == [f"line {number:03}" for number in range(22)]
    assert texts[-1] == "[log truncated: more than 200 bytes]"


# -- jobengine log --------------------------------------------------------------------------------


def finished_job_with_log(engine: Engine, lines: int) -> int:
    @engine.job
    def tell(count: int) -> str:
        for number in range(count):
            print(f"step {number} of {count}")
        return "WARNING"

    job_id = engine.submit("tell", count=lines)
    Worker(engine).drain()
    return job_id


def run_cli(url: str, *arguments: str) -> str:
    result = CliRunner().invoke(main, ["--database-url", url, *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def test_jobengine_log_prints_the_job_log(engine: Engine, database_url: str) -> None:
    job_id = finished_job_with_log(engine, 3)
    printed = run_cli(database_url, "log", str(job_id)).splitlines()
    assert [line.split(" ", 2)[2] for line in printed] == [
        f"[1] STDOUT  step {number} of 3" for number in range(3)
    ]


def test_jobengine_log_writes_a_file(engine: Engine, database_url: str, tmp_path: Path) -> None:
    job_id = finished_job_with_log(engine, 5)
    target = tmp_path / f"job-{job_id}.log"
    assert run_cli(database_url, "log", str(job_id), "-o", str(target)) == ""
    written = target.read_text().splitlines()
    assert [line.endswith(f"step {number} of 5") for number, line in enumerate(written)] == 5 * [
        True
    ]


def test_jobengine_log_of_an_unknown_job_says_so(engine: Engine, database_url: str) -> None:
    engine.store  # noqa: B018 - create the schema
    result = CliRunner().invoke(main, ["--database-url", database_url, "log", "424242"])
    assert result.exit_code != 0
    assert "no job has id 424242" in result.output


def test_jobengine_log_prints_a_long_log_whole(engine: Engine, database_url: str) -> None:
    job_id = finished_job_with_log(engine, 1)
    extra = [LogLine(job_id, 1, 1.0, "INFO", f"more {number}") for number in range(10_050)]
    engine.store.logs.append(extra)
    printed = run_cli(database_url, "log", str(job_id)).splitlines()
    assert len(printed) == 10_051
    assert printed[-1].endswith("more 10049")
