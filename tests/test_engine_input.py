"""The producer API refusing bad input: types, arguments, options and database URLs."""

from __future__ import annotations

import math
import sqlite3
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
    UnknownJobType,
)

# -- bad input writes nothing --------------------------------------------------------------------


class Opaque:
    pass


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


def test_list_refuses_a_negative_limit(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="limit must be 0 or more"):
        engine.list(limit=-1)
    assert engine.list(limit=0) == []


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


def test_a_sqlite_file_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist; create it or point the URL"):
        submit_to(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")


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
