"""Runs one job: calls its function with its context and log attached; writes nothing itself."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any

from jobengine import joblog
from jobengine.context import JobCanceled, JobContext, set_current
from jobengine.joblog import JobLog
from jobengine.model import OUTCOMES, Status
from jobengine.registry import JobType, json_problem

STATUS_NAMES = {status.value for status in OUTCOMES}


@dataclass(frozen=True)
class Outcome:
    """What running a job came to, before it is recorded."""

    status: Status
    output: str | None = None
    errors: str | None = None
    result_json: str | None = None
    stopped: bool = False

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILURE


SUCCEEDED = Outcome(Status.SUCCESS)  # what most jobs come to: one, shared (it is frozen)


def interpret(value: Any) -> Outcome:
    """Turn a job function's return value into an outcome.

    None: SUCCESS. "SUCCESS" / "WARNING" / "FAILURE": that status. A tuple (status, output,
    errors) as CloudBolt actions return. Anything else: SUCCESS with the value as the result.
    """
    if value is None:
        return SUCCEEDED
    if isinstance(value, str) and value.upper() in STATUS_NAMES:
        return Outcome(Status(value.upper()))
    if isinstance(value, tuple) and value and str(value[0]).upper() in STATUS_NAMES:
        output = value[1] if len(value) > 1 else None
        errors = value[2] if len(value) > 2 else None
        return Outcome(Status(str(value[0]).upper()), _text(output), _text(errors))
    try:
        text = json.dumps(value, allow_nan=False)
        # a surrogate's escape: read it back to tell a pair (fine) from a lone one (no UTF-8)
        problem = json_problem(json.loads(text)) if "\\ud" in text else ""
    except (TypeError, ValueError, RecursionError) as error:
        problem = str(error) or "nested too deep"
    if problem:
        errors = f"the job returned a value that is not JSON: {problem}"
        return Outcome(Status.FAILURE, errors=errors)
    return Outcome(Status.SUCCESS, result_json=text)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else joblog.clean_text(str(value))


def describe_error(error: BaseException) -> str:
    """'Type: message', even for an exception whose message cannot be turned into text."""
    name = type(error).__name__
    try:
        return f"{name}: {error}"
    except BaseException as unreadable:  # a __str__ that raises (or is cut short)
        return f"{name} (its message could not be read: {type(unreadable).__name__})"


def safe_traceback(error: BaseException) -> str:
    """The traceback of an error from job code, from the job's own frame down; never raises."""
    try:
        trace = error.__traceback__
        if trace is not None and trace.tb_frame.f_code is run_job.__code__ and trace.tb_next:
            trace = trace.tb_next
        return "".join(traceback.format_exception(type(error), error, trace))
    except BaseException:
        return f"{describe_error(error)} (its traceback could not be formatted)"


def failure_of(error: BaseException) -> Outcome:
    """FAILURE with the exception's type, message and traceback in `errors`; never raises."""
    text = f"{describe_error(error)}\n\n{safe_traceback(error)}"
    return Outcome(Status.FAILURE, errors=joblog.clean_text(text))


def run_job(job_type: JobType, args: dict[str, Any], context: JobContext, log: JobLog) -> Outcome:
    """Run the job in this thread; its logging and printing go to `log` (also in run_once)."""
    joblog.install()
    set_current(context)
    joblog.attach(log)
    try:
        try:
            context.begin()
            leading = [context] if job_type.takes_context else []
            value = job_type.function(*leading, **args)
        finally:
            context.end()
        return interpret(value)
    except JobCanceled:
        return Outcome(Status.CANCELED, errors=context.stop_reason, stopped=True)
    except BaseException as error:
        log.write("ERROR", safe_traceback(error).rstrip())
        return failure_of(error)
    finally:
        if context.running:  # the cancel exception landed before the first end() did a thing
            context.end()
        log.close()
        joblog.attach(None)
        set_current(None)
        joblog.uninstall()
