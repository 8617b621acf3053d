"""The CLI refusing bad input: one clear line, no traceback, nothing written; also as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from cli_steps import APP_SOURCE, UNREACHABLE, one_clear_line, run, submit
from click.testing import CliRunner
from job_steps import count_rows
from waiting import wait_for

from jobengine import Engine
from jobengine.cli import main

CONSOLE_SCRIPT = Path(sys.executable).parent / "jobengine"


# -- bad input: one clear line, no traceback, nothing written ------------------------------------

BAD_SUBMITS = {
    "unknown type": (["nope"], "job type 'nope' is not registered; known types: add, send"),
    "arg without =": (["add", "--arg", "oops"], "--arg 'oops' must look like key=value"),
    "arg without key": (["add", "--arg", "=1"], "--arg '=1' must look like key=value"),
    "bad json": (["add", "--json", "{nope"], "--json is not valid JSON"),
    "json not an object": (["add", "--json", "[1, 2]"], "--json must be a JSON object"),
    "missing argument": (["add", "--arg", "a=1"], "missing a required argument: 'b'"),
    "extra argument": (["add", "--json", '{"a": 1, "b": 2, "c": 3}'], "unexpected keyword"),
    "not JSON": (["add", "--arg", "a=NaN", "--arg", "b=1"], "must be JSON"),
    "bad duration": (["add", "--json", '{"a":1,"b":2}', "--in", "10 parsecs"], "not understood"),
    "negative duration": (["add", "--json", '{"a":1,"b":2}', "--in", "-5m"], "not understood"),
    "bad timeout": (["add", "--json", '{"a":1,"b":2}', "--timeout", "soon"], "not understood"),
    "bad at": (["add", "--json", '{"a":1,"b":2}', "--at", "tomorrow"], "is not an ISO time"),
    "in and at": (
        ["add", "--json", '{"a":1,"b":2}', "--in", "1m", "--at", "2030-01-01T00:00"],
        "give --in or --at, not both",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SUBMITS))
def test_bad_submit_is_one_clear_line_and_writes_nothing(
    database_url: str, app: str, reader: Engine, case: str
) -> None:
    arguments, message = BAD_SUBMITS[case]
    submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    rows_before = count_rows(reader.store)
    one_clear_line(run(database_url, app, "submit", *arguments), message)
    assert count_rows(reader.store) == rows_before


EXISTING_ONLY = {
    "jobs": ["jobs"],
    "show": ["show", "1"],
    "why": ["why", "1"],
    "cancel": ["cancel", "1"],
    "workers": ["workers"],
    "schedules list": ["schedules", "list"],
    "web": ["web", "--port", "0"],
}


@pytest.mark.parametrize("case", list(EXISTING_ONLY))
def test_a_mistyped_sqlite_path_is_refused_not_created(tmp_path: Path, app: str, case: str) -> None:
    path = tmp_path / "jbos.db"  # the operator meant jobs.db
    result = run(f"sqlite:///{path}", app, *EXISTING_ONLY[case])
    one_clear_line(result, f"no SQLite database at {str(path)!r}: check the path in --database-url")
    assert "`jobengine db upgrade`" in result.stderr
    assert not path.exists()


def test_the_doctor_and_a_bundle_say_the_database_is_missing_and_create_none(
    tmp_path: Path,
) -> None:
    path, bundle = tmp_path / "jbos.db", tmp_path / "bundle.tar.gz"
    result = run(f"sqlite:///{path}", None, "doctor")
    assert result.exit_code == 1 and "Traceback" not in result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("FAIL  database:") and f"no SQLite database at {str(path)!r}" in first
    assert run(f"sqlite:///{path}", None, "support-bundle", "-o", str(bundle)).exit_code == 0
    with tarfile.open(bundle) as archive:
        [doctor] = [name for name in archive.getnames() if name.endswith("/doctor.txt")]
        text = archive.extractfile(doctor).read().decode()  # type: ignore[union-attr]
    assert f"no SQLite database at {str(path)!r}" in text
    assert not path.exists()


def test_db_status_and_sql_read_a_missing_database_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    status = run(f"sqlite:///{path}", None, "db", "status")
    assert status.exit_code == 0 and "not created yet: `jobengine db upgrade`" in status.stdout
    assert "applied: none" in status.stdout
    sql = run(f"sqlite:///{path}", None, "db", "sql")
    assert sql.exit_code == 0 and "CREATE TABLE jobs" in sql.stdout
    assert not path.exists()
    assert run(f"sqlite:///{path}", None, "db", "upgrade").exit_code == 0
    assert (
        path.exists()
        and "not created yet" not in run(f"sqlite:///{path}", None, "db", "status").stdout
    )


def test_submit_worker_and_api_still_create_a_new_database(tmp_path: Path, app: str) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    job_id = submit(url, app, "add", "--arg", "a=1", "--arg", "b=2")
    assert f"{job_id}" in run(url, app, "jobs").stdout
    engine = Engine(f"sqlite:///{tmp_path / 'by_api.db'}")
    try:
        assert engine.list() == []  # the Python API creates, as before
    finally:
        engine.close()
    assert (tmp_path / "by_api.db").exists()


@pytest.mark.parametrize("command", ["show", "cancel", "rerun", "log"])
def test_an_unknown_job_id_is_one_clear_line(
    database_url: str, app: str, reader: Engine, command: str
) -> None:
    submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    rows_before = count_rows(reader.store)
    one_clear_line(run(database_url, app, command, "999999"), "no job has id 999999")
    assert count_rows(reader.store) == rows_before


def test_a_bad_status_filter_is_one_clear_line(database_url: str, app: str) -> None:
    one_clear_line(run(database_url, app, "jobs", "--status", "done"), "unknown status 'done'")


def test_a_damaged_database_is_one_clear_line(database_url: str, app: str, reader: Engine) -> None:
    job_id = submit(database_url, app, "add", "--arg", "a=1", "--arg", "b=2")
    with reader.store.database.transaction() as transaction:
        transaction.execute("DROP TABLE job_events")
    result = run(database_url, app, "show", str(job_id))
    one_clear_line(result, "the database refused the command")
    assert "job_events" in result.stderr
    assert "jobengine db status" in result.stderr


def test_click_usage_errors_have_no_traceback(database_url: str, app: str) -> None:
    usage_errors = (
        ["show", "abc"],
        ["submit", "add", "--priority", "high"],
        ["jobs", "--limit", "-1"],
        ["nope"],
    )
    for arguments in usage_errors:
        result = run(database_url, app, *arguments)
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        assert "Error:" in result.stderr


WHOLE_NUMBER_OPTIONS = {
    "worker --concurrency": (["worker", "--concurrency"], "thread counts", 1, 10000),
    "run --workers": (["run", "--workers"], "worker counts", 1, 1000),
    "schedules list --next": (["schedules", "list", "--next"], "counts of fire times", 0, 1000),
    "web --port": (["web", "--port"], "ports", 0, 65535),
}


@pytest.mark.parametrize("case", list(WHOLE_NUMBER_OPTIONS))
def test_whole_number_options_say_their_range(sqlite_url: str, app: str, case: str) -> None:
    arguments, what, lowest, highest = WHOLE_NUMBER_OPTIONS[case]
    for value, problem in (("abc", "'abc' is not a whole number"), ("-5", "-5 is out of range")):
        result = run(sqlite_url, app, *arguments, value)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"{problem}; {what} are whole numbers from {lowest} to {highest}" in result.stderr
        assert "integer range" not in result.stderr and "valid integer" not in result.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_web_dead_after_refuses_what_other_dead_afters_refuse(
    sqlite_url: str, app: str, value: str
) -> None:
    for command in (["web"], ["workers"]):
        result = run(sqlite_url, app, *command, "--dead-after", value)
        assert result.exit_code == 2 and "Traceback" not in result.output, command
        assert "is not a usable number of seconds" in result.stderr or (
            "is not a number of seconds" in result.stderr
        ), command
    runner = CliRunner(env={"JOBENGINE_WEB_DEAD_AFTER": value, "JOBENGINE_APP": None})
    from_environment = runner.invoke(main, ["--database-url", sqlite_url, "web"])
    assert from_environment.exit_code == 2, from_environment.output
    assert "JOBENGINE_WEB_DEAD_AFTER" in from_environment.stderr
    assert "number of seconds" in from_environment.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("jobs.db", "'jobs.db' is not a URL; use sqlite:///relative/path.db"),
        ("mysql://root@localhost/jobs", "scheme 'mysql' is not supported"),
        ("sqlite:///no/such/folder/jobs.db", "does not exist; create it or point the URL"),
        ("postgresql://u@127.0.0.1:port/x", "port 'port' is not a number"),
        (UNREACHABLE, "check that the server is running"),
    ],
)
@pytest.mark.timeout(30)
def test_a_bad_database_url_is_one_clear_line(
    app: str, tmp_path: Path, url: str, message: str
) -> None:
    for arguments in (
        ["jobs"],
        ["submit", "add", "--arg", "a=1", "--arg", "b=2"],
        ["db", "status"],
    ):
        one_clear_line(run(url, app, *arguments), message)
    assert not (tmp_path / "no").exists()


BAD_APPS = {
    "missing module": ("no_such_app_module", None, "cannot import app module 'no_such_app_module'"),
    "missing package": ("no_such_package.app", None, "cannot import app module 'no_such_package"),
    "missing dependency": (
        "broken_app",
        "import os\nimport no_such_dependency\n",
        "app module 'broken_app' imports a missing module 'no_such_dependency' (broken_app.py,"
        " line 2); install it in this environment, or run python -c 'import broken_app'",
    ),
    "module that raises": (
        "raising_app",
        "import os\nraise RuntimeError('boom')\n",
        "app module 'raising_app' raised RuntimeError at import: boom (raising_app.py, line 2);"
        " run python -c 'import raising_app' to see the traceback",
    ),
    "syntax error": (
        "syntax_app",
        "def (:\n",
        "app module 'syntax_app' raised SyntaxError at import: invalid syntax"
        " (syntax_app.py, line 1)",
    ),
    "missing attribute": (
        "good_app:nothing",
        APP_SOURCE,
        "module good_app has no attribute 'nothing' (it has an Engine in 'engine': "
        "--app good_app:engine); name the attribute that holds the Engine",
    ),
    "not an engine": ("good_app:send", APP_SOURCE, "good_app:send is not a jobengine Engine"),
}


@pytest.mark.parametrize("case", list(BAD_APPS))
def test_an_app_that_cannot_be_loaded_is_one_clear_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    app, source, message = BAD_APPS[case]
    module = f"{app.partition(':')[0]}_{uuid.uuid4().hex[:8]}"
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    spec = module + (":" + app.partition(":")[2] if ":" in app else "")
    try:
        result = run(sqlite_url, spec, "submit", "add", "--arg", "a=1", "--arg", "b=2")
    finally:
        sys.modules.pop(module, None)
    one_clear_line(result, message.replace(app.partition(":")[0], module))
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_an_app_given_as_a_file_name_says_to_write_the_module_name(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"file_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(APP_SOURCE)
    monkeypatch.chdir(tmp_path)
    try:
        result = run(sqlite_url, f"{module}.py", "submit", "add", "--arg", "a=1", "--arg", "b=2")
    finally:
        sys.modules.pop(module, None)
    one_clear_line(result, f"cannot import app module '{module}.py'")
    one_clear_line(result, f"write --app {module} (a module name, not a file name)")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_without_an_app_the_error_says_how_to_register(sqlite_url: str) -> None:
    one_clear_line(run(sqlite_url, None, "submit", "add"), "none (pass --app")


# -- the real console script ---------------------------------------------------------------------


def console(
    cwd: Path, url: str, app: str | None, *arguments: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JOBENGINE_DATABASE_URL": url}
    environment.pop("JOBENGINE_APP", None)
    if app:
        environment["JOBENGINE_APP"] = app
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(90)
def test_the_console_script_end_to_end(
    database_url: str, app: str, tmp_path: Path, reader: Engine
) -> None:
    submitted = console(
        tmp_path, database_url, app, "submit", "send", "--arg", "to=ada", "--in", "1h"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = int(submitted.stdout.strip())
    shown = console(tmp_path, database_url, app, "show", str(job_id), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["type"], data["args"], data["queue"]) == ("send", {"to": "ada"}, "mail")
    assert [event["verb"] for event in data["events"]] == ["submit"]
    status = console(tmp_path, database_url, None, "db", "status")
    assert status.returncode == 0 and "to apply: none" in status.stdout
    rows_before = count_rows(reader.store)
    unknown = console(tmp_path, database_url, app, "submit", "nope")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().splitlines() == [
        "Error: job type 'nope' is not registered; known types: add, send"
    ]
    assert "Traceback" not in unknown.stderr + unknown.stdout
    assert count_rows(reader.store) == rows_before


@pytest.mark.timeout(60)
def test_the_console_script_on_an_unreachable_postgresql(tmp_path: Path) -> None:
    result = console(tmp_path, UNREACHABLE, None, "jobs")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert "cannot connect to PostgreSQL at 'postgresql://postgres@127.0.0.1:1/test'" in line
    assert "check that the server is running" in line


@pytest.mark.timeout(60)
def test_the_console_script_with_a_broken_app(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('boom')\n")
    result = console(tmp_path, sqlite_url, "broken_app", "submit", "add")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line == (
        "Error: app module 'broken_app' raised RuntimeError at import: boom"
        " (broken_app.py, line 1); run python -c 'import broken_app' to see the traceback"
    )
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


@pytest.mark.timeout(60)
def test_a_worker_without_an_app_warns_that_it_can_run_nothing(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    command = [sys.executable, "-m", "jobengine", "--database-url", f"sqlite:///{tmp_path}/j.db"]
    command += ["worker", "--log-file", str(log_file)]
    environment = {key: value for key, value in os.environ.items() if key != "JOBENGINE_APP"}
    process = subprocess.Popen(command, cwd=tmp_path, env=environment)
    try:
        wait_for(
            lambda: log_file.exists() and "started" in log_file.read_text(), 30, "a started worker"
        )
        assert "no job types are registered, so this worker can run no job; pass --app" in (
            log_file.read_text()
        )
    finally:
        process.terminate()
        assert process.wait(30) == 0
