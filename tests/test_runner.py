"""The runner and the recorder: return values, exceptions and printed text become outcomes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest

from jobengine import Engine
from jobengine.context import JobCanceled, JobContext, current_job
from jobengine.joblog import JobLog, clean_text
from jobengine.model import Status
from jobengine.recorder import Record, decide
from jobengine.registry import JobType
from jobengine.runner import Outcome, failure_of, interpret, run_job
from jobengine.store import LogLine
from jobengine.worker import Worker, job_logger

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Outcome(Status.SUCCESS)),
        ("SUCCESS", Outcome(Status.SUCCESS)),
        ("WARNING", Outcome(Status.WARNING)),
        ("warning", Outcome(Status.WARNING)),
        ("FAILURE", Outcome(Status.FAILURE)),
        (Status.WARNING, Outcome(Status.WARNING)),
        (("WARNING", "disk 91% full", ""), Outcome(Status.WARNING, "disk 91% full")),
        (
            ("FAILURE", "made 2 of 3", "host c down"),
            Outcome(Status.FAILURE, "made 2 of 3", "host c down"),
        ),
        (("SUCCESS",), Outcome(Status.SUCCESS)),
        (("success", 3, None), Outcome(Status.SUCCESS, "3")),
        (
            {"servers": ["web-1"], "n": 2},
            Outcome(Status.SUCCESS, result_json='{"servers": ["web-1"], "n": 2}'),
        ),
        ("done", Outcome(Status.SUCCESS, result_json='"done"')),
        (42, Outcome(Status.SUCCESS, result_json="42")),
        ((1, 2), Outcome(Status.SUCCESS, result_json="[1, 2]")),
        (False, Outcome(Status.SUCCESS, result_json="false")),
    ],
)
def test_return_values_decide_the_outcome(value: Any, expected: Outcome) -> None:
    assert interpret(value) == expected


def test_a_return_value_beyond_the_basic_plane_is_text() -> None:
    assert interpret({"face": "\U0001f600"}).result_json == '{"face": "\\ud83d\\ude00"}'


@pytest.mark.parametrize(
    "value", [object(), {1, 2}, float("nan"), {"when": b"bytes"}, ["\ud800"], {"\udfff": 1}]
)
def test_a_return_value_that_is_not_json_is_a_failure(value: Any) -> None:
    outcome = interpret(value)
    assert outcome.status is Status.FAILURE
    assert outcome.errors is not None
    assert outcome.errors.startswith("the job returned a value that is not JSON")
    assert outcome.result_json is None


def test_failure_of_names_type_message_and_traceback() -> None:
    try:
        raise KeyError("server web-9")
    except KeyError as error:
        outcome = failure_of(error)
    assert outcome.status is Status.FAILURE
    assert outcome.errors is not None
    assert outcome.errors.startswith(
        "KeyError: 'server web-9'\n\nTraceback (most recent call last)"
    )
    assert "test_failure_of_names_type_message_and_traceback" in outcome.errors


def test_clean_text_escapes_what_no_database_stores() -> None:
    assert clean_text("plain ünïcode ✓") == "plain ünïcode ✓"
    assert clean_text("a\x00b") == "a\\x00b"
    assert clean_text("bad \udcff end") == "bad \\udcff end"


# -- run_job: a job function called with its context, its log captured ----------------------------

Lines = list[LogLine]


def run(function: Callable[..., Any], **arguments: Any) -> tuple[Outcome, Lines, JobContext]:
    """Run `function` as job 7, attempt 2, the way an executor does; return outcome and log."""
    lines: Lines = []
    context = JobContext(7, 2, "example", job_logger("example"), lambda f, m: None)
    job_log = JobLog(7, 2, lines.append, cap=1_000_000, clock=lambda: 1.0)
    job_type = JobType(name="example", function=function)
    return run_job(job_type, arguments, context, job_log), lines, context


def test_a_job_that_raises_fails_with_its_traceback_in_errors_and_log() -> None:
    def provision(server: str) -> None:
        raise ValueError(f"no capacity for {server}")

    outcome, lines, _ = run(provision, server="web-1")
    assert outcome.status is Status.FAILURE
    assert outcome.errors is not None
    first, _, trace = outcome.errors.partition("\n\n")
    assert first == "ValueError: no capacity for web-1"
    assert trace.startswith("Traceback (most recent call last)")
    assert "in provision" in trace
    assert "in run_job" not in trace, "the traceback starts at the job's own frame"
    assert [line.level for line in lines] == ["ERROR"]
    assert "ValueError: no capacity for web-1" in lines[0].text


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt()])
def test_even_system_exit_in_a_job_is_only_a_failure(error: BaseException) -> None:
    def leave() -> None:
        raise error

    outcome, _, _ = run(leave)
    assert outcome.status is Status.FAILURE
    assert outcome.errors is not None
    assert outcome.errors.startswith(type(error).__name__)


def test_ctx_is_passed_and_is_current_job_in_the_job_thread() -> None:
    seen: dict[str, Any] = {}

    def inspect(ctx: JobContext, label: str) -> dict[str, Any]:
        seen["current"] = current_job()
        seen["context"] = ctx
        return {"id": ctx.job_id, "attempt": ctx.attempt, "label": label}

    outcome, _, context = run(inspect, label="x")
    assert seen["context"] is context
    assert seen["current"] is context
    assert outcome.result_json == '{"id": 7, "attempt": 2, "label": "x"}'
    assert current_job() is None, "the context is only current while the job runs"


def test_a_function_without_ctx_gets_only_its_arguments() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    outcome, _, _ = run(add, a=2, b=3)
    assert outcome == Outcome(Status.SUCCESS, result_json="5")


def test_logging_and_printing_go_to_the_job_log_and_streams_are_restored() -> None:
    stdout, stderr = sys.stdout, sys.stderr

    def talk(ctx: JobContext) -> None:
        ctx.log.info("from ctx.log %s", 1)
        logging.getLogger("some.library").warning("from a library")
        print("from print", end="")
        print(" and more")
        print("to stderr", file=sys.stderr)
        print("unfinished", end="")

    outcome, lines, _ = run(talk)
    assert outcome.status is Status.SUCCESS
    assert [(line.level, line.text) for line in lines] == [
        ("INFO", "job.example: from ctx.log 1"),
        ("WARNING", "some.library: from a library"),
        ("STDOUT", "from print and more"),
        ("STDERR", "to stderr"),
        ("STDOUT", "unfinished"),
    ]
    assert all((line.job_id, line.attempt) == (7, 2) for line in lines)
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


def test_a_cancel_exception_means_canceled() -> None:
    def stop(ctx: JobContext) -> None:
        ctx.request_stop("cancel", "canceled by an operator")
        ctx.check_cancel()

    outcome, _, _ = run(stop)
    assert outcome == Outcome(Status.CANCELED, errors="canceled by an operator", stopped=True)


class CanceledAsItEnds(JobContext):
    """The cancel exception landing at the first step of `end()` (the job function has just
    returned), as the ladder's interrupt can: that first `end()` does nothing."""

    landed = False

    def end(self) -> None:
        if not self.landed:
            self.landed = True
            raise JobCanceled("landed as the job ended")
        super().end()


def test_a_cancel_landing_as_the_job_ends_still_ends_the_context() -> None:
    """Else the context stays running and later pushes of the ladder would land in the pooled
    thread, in the pool's own code, after the job."""
    context = CanceledAsItEnds(7, 1, "example", job_logger("example"), lambda f, m: None)
    job_log = JobLog(7, 1, [].append, cap=1_000_000, clock=lambda: 1.0)
    job_type = JobType(name="example", function=lambda: None)
    outcome = run_job(job_type, {}, context, job_log)
    assert context.landed
    assert not context.running, "an interrupt could still be raised in this thread"
    assert outcome.status is Status.CANCELED


def test_job_canceled_is_not_swallowed_by_except_exception() -> None:
    def stubborn() -> str:
        try:
            raise JobCanceled("stop")
        except Exception:  # pragma: no cover - must not catch it
            return "caught"

    outcome, _, _ = run(stubborn)
    assert outcome.status is Status.CANCELED


def test_text_a_database_cannot_store_is_escaped() -> None:
    def dirty() -> tuple[str, str, str]:
        print("nul \x00 and \udcff")
        return ("WARNING", "out\x00put", "bad \udcff")

    outcome, lines, _ = run(dirty)
    assert outcome == Outcome(Status.WARNING, "out\\x00put", "bad \\udcff")
    assert [line.text for line in lines] == ["nul \\x00 and \\udcff"]


# -- recorded on both backends --------------------------------------------------------------------


def test_text_no_database_stores_is_escaped_not_lost(engine: Engine) -> None:
    """A NUL (refused by PostgreSQL) or a lone surrogate (refused by both) once lost outcomes."""

    @engine.job
    def dirty() -> tuple[str, str, str]:
        print("printed \x00 and \udcff")
        return ("WARNING", "out\x00put", "bad \udcff")

    dirty_id, clean_id = engine.submit("dirty"), engine.submit("add", a=1, b=2)
    Worker(engine).drain()
    dirty_job = engine.get(dirty_id)
    assert (dirty_job.status, dirty_job.output, dirty_job.errors) == (
        Status.WARNING,
        "out\\x00put",
        "bad \\udcff",
    )
    assert [line.text for line in engine.log(dirty_id)] == ["printed \\x00 and \\udcff"]
    assert engine.get(clean_id).result == 3


def test_an_outcome_the_database_refuses_ends_failure_and_spares_the_batch(engine: Engine) -> None:
    worker = Worker(engine)
    ids = [engine.submit("add", a=1, b=1), engine.submit("add", a=2, b=2)]
    started = engine.store.jobs.claim(worker.id, [], 10, engine.clock.now(), start=True)
    outcomes = [Outcome(Status.SUCCESS, output="lone \udcff"), Outcome(Status.SUCCESS, "fine")]
    for job, outcome in zip(started, outcomes, strict=True):
        moves = decide(job, outcome, None, worker.id, engine.clock.now())
        worker.recorder.add(Record(job, moves))
    assert worker.recorder.flush() == 2

    refused, fine = (engine.get(job_id) for job_id in ids)
    assert refused.status is Status.FAILURE
    assert refused.errors is not None
    assert refused.errors.startswith("the outcome could not be stored (UnicodeEncodeError")
    assert (fine.status, fine.output) == (Status.SUCCESS, "fine")


def test_an_outcome_after_a_cancel_request_is_recorded_by_its_second_choice(engine: Engine) -> None:
    """The move from RUNNING is tried first and only made then; the one from TO_CANCEL is made
    when the first has lost, and records the outcome all the same."""
    worker = Worker(engine)
    ids = [engine.submit("add", a=1, b=1), engine.submit("add", a=2, b=2)]
    started = engine.store.jobs.claim(worker.id, [], 10, engine.clock.now(), start=True)
    assert engine.cancel(ids[1]) is Status.TO_CANCEL  # a cancel request lands as it finishes
    choices = [decide(job, Outcome(Status.SUCCESS), None, worker.id, 1.0) for job in started]
    assert [list(made) for made in (choice.made for choice in choices)] == [[], []]
    for job, moves in zip(started, choices, strict=True):
        worker.recorder.add(Record(job, moves))
    assert worker.recorder.flush() == 2

    assert [list(choice.made) for choice in choices] == [
        [Status.RUNNING],
        [Status.RUNNING, Status.TO_CANCEL],
    ]
    assert [engine.get(job_id).status for job_id in ids] == [Status.SUCCESS, Status.SUCCESS]
    finish = engine.events(ids[1])[-1]
    assert (finish.verb, finish.from_status, finish.to_status) == (
        "finish",
        Status.TO_CANCEL,
        Status.SUCCESS,
    )
    assert finish.reason == "finished before the cancel took effect"


def test_the_jobs_claimed_with_a_batch_start_before_the_batch_is_logged(engine: Engine) -> None:
    """The recorder launches the jobs it claimed with a batch of outcomes before it logs the
    batch and calls back each record: they run while it does."""
    worker = Worker(engine)
    worker.recorder.refill = worker  # as while the worker runs
    first = engine.submit("add", a=1, b=1)
    [job] = engine.store.jobs.claim(worker.id, [], 1, engine.clock.now(), start=True)
    successor = engine.submit("add", a=2, b=2)
    running_when_recorded: list[set[int]] = []

    def recorded(move: object) -> None:
        running_when_recorded.append(set(worker.running))

    moves = decide(job, Outcome(Status.SUCCESS), None, worker.id, engine.clock.now())
    worker.recorder.add(Record(job, moves, recorded))
    assert worker.recorder.flush() == 1

    assert running_when_recorded == [{successor}]  # launched (it stays until it is recorded)
    assert engine.get(first).status is Status.SUCCESS
