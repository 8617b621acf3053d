"""The producer API refusing bad input: types, arguments, options and database URLs."""

from __future__ import annotations

import functools
import math
import re
import sqlite3
import traceback
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from job_steps import count_rows

from jobengine import (
    ConfigurationError,
    DatabaseUnavailable,
    Engine,
    InvalidArguments,
    JobEngineError,
    JobNotFound,
    UnknownJobType,
)

# -- bad input writes nothing --------------------------------------------------------------------


class Opaque:
    pass


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BAD_ARGUMENTS: dict[str, tuple[type[Exception], str, str, dict[str, Any]]] = {
    "unknown type": (
        UnknownJobType,
        "nope",
        "'nope' is not registered; known types: add, greet",
        {},
    ),
    "object": (InvalidArguments, "add", "must be JSON", {"a": Opaque(), "b": 1}),
    "nan": (InvalidArguments, "add", "must be JSON", {"a": math.nan, "b": 1}),
    "infinity": (InvalidArguments, "add", "must be JSON", {"a": [1, math.inf], "b": 1}),
    "tuple": (InvalidArguments, "add", "would change when stored as JSON", {"a": (1, 2), "b": 1}),
    "set": (InvalidArguments, "add", "must be JSON", {"a": {1, 2}, "b": 1}),
    "bytes": (InvalidArguments, "add", "must be JSON", {"a": b"x", "b": 1}),
    "non-string key": (InvalidArguments, "add", "would change", {"a": {1: "x"}, "b": 1}),
    "missing argument": (InvalidArguments, "add", "missing a required argument: 'b'", {"a": 1}),
    "extra argument": (
        InvalidArguments,
        "add",
        "unexpected keyword argument 'c'",
        {"a": 1, "b": 2, "c": 3},
    ),
    "missing after ctx": (InvalidArguments, "greet", "do not fit job type 'greet'", {}),
    "lone surrogate": (InvalidArguments, "add", "text that is not UTF-8", {"a": "\ud800", "b": 1}),
    "surrogate key": (InvalidArguments, "add", "not UTF-8", {"a": {"\udfff": 1}, "b": 1}),
    "deep": (InvalidArguments, "add", "nested deeper than 100 levels", {"a": nested(500), "b": 1}),
    "deeper than JSON": (InvalidArguments, "add", "nested deeper", {"a": nested(5000), "b": 1}),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_input_is_refused_and_nothing_is_written(engine: Engine, case: str) -> None:
    error, type_name, message, arguments = BAD_ARGUMENTS[case]
    rows_before = count_rows(engine.store)
    with pytest.raises(error, match=message):
        engine.submit(type_name, **arguments)
    with pytest.raises(error, match=message):
        engine.submit(type_name, arguments=arguments)
    assert count_rows(engine.store) == rows_before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"run_at": datetime(2030, 1, 1)}, "run_at must be time-zone aware"),
        ({"run_at": 1.0, "delay": 1.0}, "give run_at or delay, not both"),
        ({"run_at": math.nan}, "run_at must be a finite"),
        ({"delay": math.inf}, "run_at must be a finite"),
        ({"timeout": 0}, "timeout must be a positive number of seconds"),
        ({"timeout": math.nan}, "timeout must be a positive number of seconds"),
        ({"timeout": "5"}, "timeout must be a number of seconds"),
        ({"max_attempts": 0}, "max_attempts must be 1 or more"),
        ({"priority": "high"}, "priority must be a whole number"),
        ({"parent": 999_999}, "no job has id 999999"),
        ({"parent": 0}, "parent=0 does not fit"),
        ({"priority": 2**31}, "priority=2147483648 does not fit a 32-bit integer"),
        ({"max_attempts": 2**40}, "does not fit a 32-bit integer"),
        ({"queue": ""}, "queue must be non-empty text"),
        ({"queue": 5}, "queue must be non-empty text, not 5"),
        ({"queue": "a,b"}, "has spaces at an end or one of ','"),
        ({"queue": " a"}, "has spaces at an end"),
        ({"queue": "a\x00"}, "control characters"),
        ({"queue": "q" * 201}, "longer than 200 characters"),
        ({"actor": None}, "actor must be non-empty text"),
        ({"arguments": ["x"]}, "must be a dict of argument names to values, not list"),
    ],
    ids=str,
)
def test_bad_options_are_refused_and_nothing_is_written(
    engine: Engine, options: dict[str, Any], message: str
) -> None:
    rows_before = count_rows(engine.store)
    with pytest.raises(JobEngineError, match=message):
        engine.submit("add", a=1, b=2, **options)
    assert count_rows(engine.store) == rows_before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"a": 1, "b": 2}, "takes a list of argument dicts, one per job, not a dict"),
        (None, "not a NoneType"),
        ([{"a": 1, "b": 2}, None], "item 1: arguments of job type 'add' must be a dict"),
        ([{"a": 1, "b": 2}, {"a": 1}], "item 1: .* missing a required argument: 'b'"),
    ],
    ids=str,
)
def test_submit_many_names_the_bad_item_and_writes_nothing(
    engine: Engine, arguments: Any, message: str
) -> None:
    rows_before = count_rows(engine.store)
    with pytest.raises(InvalidArguments, match=message):
        engine.submit_many("add", arguments)
    assert count_rows(engine.store) == rows_before


def test_an_actor_must_be_named_to_cancel(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2)
    with pytest.raises(ConfigurationError, match="actor must be non-empty text"):
        engine.cancel(job_id, actor="")
    assert engine.get(job_id).status.name == "PENDING"


def test_the_log_of_a_job_that_does_not_exist_is_not_found(engine: Engine) -> None:
    with pytest.raises(JobNotFound, match="999999"):
        engine.log(999_999)
    assert engine.log(engine.submit("add", a=1, b=2)) == []


def test_list_refuses_a_negative_limit(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="limit must be 0 or more"):
        engine.list(limit=-1)
    assert engine.list(limit=0) == []


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"type": 5}, "type must be text, not 5"),
        ({"queue": ["a"]}, "queue must be text"),
        ({"after": "x"}, "after must be a whole number, not 'x'"),
        ({"after": 2**70}, "after=1180591620717411303424 does not fit a 64-bit integer"),
    ],
    ids=str,
)
def test_list_refuses_filters_of_the_wrong_kind(
    engine: Engine, filters: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        engine.list(**filters)


def test_refused_input_does_not_even_create_the_database(tmp_path: Path) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'untouched.db'}")
    engine.job(lambda a: a, name="echo")
    with pytest.raises(UnknownJobType):
        engine.submit("nope")
    with pytest.raises(InvalidArguments):
        engine.submit("echo", a=object())
    assert not (tmp_path / "untouched.db").exists()


def test_registering_bad_job_types_is_refused(engine: Engine) -> None:
    def other(a: int) -> int:
        return a

    with pytest.raises(ConfigurationError, match="'add' is registered twice"):
        engine.job(name="add")(other)
    with pytest.raises(ConfigurationError, match="max_attempts must be 1 or more"):
        engine.job(name="x", max_attempts=0)(other)
    with pytest.raises(ConfigurationError, match="isolation must be one of"):
        engine.job(name="y", isolation="fork")(other)
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        engine.job(name="z", timeout=-1)(other)
    with pytest.raises(ConfigurationError, match="unknown option 'retries'"):
        engine.job(name="w", retries=3)(other)
    with pytest.raises(ConfigurationError, match="two names"):
        engine.job("v", name="u")(other)
    with pytest.raises(ConfigurationError, match="registers a function, not a int"):
        engine.job(name="t")(5)  # type: ignore[type-var]
    assert engine.registry.names() == ["add", "greet"]


async def coroutine_job() -> None:
    return None


def generator_job() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("function", "options", "message"),
    [
        (max, {"name": "m"}, "cannot read the parameters of <built-in function max>"),
        (coroutine_job, {}, "async job functions are not supported"),
        (generator_job, {}, "a generator function would return a generator"),
        (functools.partial(max, 1), {}, "has no name of its own to name its job type; pass"),
        (lambda: None, {}, "has no name of its own to name its job type; pass name="),
        (abs, {"name": 5}, "a job type's name must be non-empty text, not 5"),
        (abs, {"name": "p", "priority": "high"}, "job type 'p': priority must be a whole"),
        (abs, {"name": "p", "priority": 2**31}, "does not fit a 32-bit integer"),
        (abs, {"name": "a", "max_attempts": "3"}, "max_attempts must be a whole number"),
        (abs, {"name": "a", "max_attempts": 2.5}, "max_attempts must be a whole number"),
        (abs, {"name": "t", "timeout": "10"}, "timeout must be positive seconds"),
        (abs, {"name": "t", "timeout": math.nan}, "timeout must be positive seconds"),
        (abs, {"name": "t", "timeout": math.inf}, "timeout must be positive seconds"),
        (abs, {"name": "q", "queue": None}, "job type 'q': queue must be non-empty text"),
        (abs, {"name": "i", "idempotent": "no"}, "idempotent must be True or False"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_job_type_with_bad_options_is_refused_when_registered(
    engine: Engine, function: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        engine.job(function, **options)
    assert engine.registry.names() == ["add", "greet"]
    with pytest.raises(UnknownJobType, match="known types: add, greet"):
        engine.submit("nope")


def test_recurring_without_its_timing_is_refused(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="needs its timing"):

        @engine.recurring  # type: ignore[arg-type]
        def housekeeping() -> None:
            return None

    assert "housekeeping" not in engine.registry


def test_a_pool_size_must_be_a_whole_number_from_1(tmp_path: Path) -> None:
    for size in (0, -1, "3"):
        with pytest.raises(ConfigurationError, match="pool_size"):
            Engine(f"sqlite:///{tmp_path / 'jobs.db'}", pool_size=size)  # type: ignore[arg-type]


def test_a_job_type_may_be_named_by_the_decorator_argument(engine: Engine) -> None:
    @engine.job("triple", max_attempts=2)
    def anything(a: int) -> int:
        return 3 * a

    job_type = engine.registry.get("triple")
    assert (job_type.function, job_type.max_attempts) == (anything, 2)


# -- database URLs -------------------------------------------------------------------------------


def submit_to(url: str) -> None:
    engine = Engine(url)
    engine.job(lambda a: a, name="echo")
    try:
        engine.submit("echo", a=1)
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("jobs.db", "is not a URL; use sqlite:///relative/path.db"),
        ("sqlite://jobs.db", "names no file; use sqlite:///"),
        ("sqlite:///:memory:", "names no file .workers in other processes need one"),
        ("sqlite:///", "names no file"),
        ("mysql://root@localhost/jobs", "scheme 'mysql' is not supported"),
        ("postgresql://postgres@127.0.0.1:notaport/test", "port 'notaport' is not a number"),
        ("postgresql://postgres@127.0.0.1:5432/test?bogus=1", "is malformed"),
        ("postgresql://[::1/test", "is malformed"),
    ],
)
def test_a_bad_database_url_names_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        submit_to(url)


def test_a_malformed_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError, match="is malformed") as caught:
        submit_to("postgresql://user:hunter2@[::1/test")
    assert "hunter2" not in str(caught.value)
    assert "user:***@" in str(caught.value)
    assert "hunter2" not in printed_chain(caught.value)


def printed_chain(error: BaseException) -> str:
    """What an uncaught `error` prints of itself and the exceptions chained to it."""
    return "".join(traceback.format_exception_only(error)) + "".join(
        line for line in traceback.format_exception(error) if not line.startswith("  ")
    )


def test_an_unencoded_at_sign_in_a_password_is_named_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match=r"has more than one '@'.*as %40") as caught:
        submit_to("postgresql://postgres:S3cret@PW@127.0.0.1:5432/test")
    assert "S3cret" not in printed_chain(caught.value)
    assert "PW@" not in printed_chain(caught.value)


def test_a_sqlite_file_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist; create it or point the URL"):
        submit_to(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")


def test_a_folder_named_as_the_database_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="the path is a folder: name a file in it"):
        submit_to(f"sqlite:///{tmp_path}")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    with pytest.raises(DatabaseUnavailable, match=r"notes\.txt"):
        submit_to(f"sqlite:///{text}")
    assert text.read_text() == "not a database\n" * 100


@pytest.mark.timeout(30)
def test_an_unreachable_postgresql_names_the_fix() -> None:
    with pytest.raises(DatabaseUnavailable, match="check that the server is running") as caught:
        submit_to("postgresql://postgres:secret@127.0.0.1:1/test")
    assert "127.0.0.1" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("JOBENGINE_DATABASE_URL", url)
    assert Engine().url == url
    assert Engine("sqlite:///explicit.db").url == "sqlite:///explicit.db"


def test_without_a_url_the_default_is_a_file_in_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JOBENGINE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = Engine()
    assert engine.url == "sqlite:///jobengine.db"
    engine.job(lambda a: a, name="echo")
    try:
        job_id = engine.submit("echo", a=1)
    finally:
        engine.close()
    assert (tmp_path / "jobengine.db").exists()
    with sqlite3.connect(tmp_path / "jobengine.db") as connection:
        assert connection.execute("SELECT id FROM jobs").fetchall() == [(job_id,)]
