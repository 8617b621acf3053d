"""Fault: database passwords with #, /, ? and @ in them, or given as ?password= (issue 10, item 14).

No planted password, nor any piece of it between URL punctuation, may appear in what the
commands print, in a worker's log file or stderr, or in the command lines of the workers a
supervisor starts: checked with real commands against the real PostgreSQL server (which trusts
every password here, so a URL with one connects) and an unreachable port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
from click.testing import CliRunner
from invariants import check_invariants
from waiting import wait_for

from jobengine import Engine, Status
from jobengine.cli import main
from jobengine.redaction import MASK, mask_text, mask_url, redact, scrub
from jobengine.store.database import describe

pytestmark = pytest.mark.timeout(120)
PASSWORDS = {
    "hash": "Hash#Secret2024",
    "slash": "Slash/Secret2024",
    "question": "Quest?Secret2024",
    "at": "Atsign@Secret2024",
    "all four": "Mixed#Part/Next?Last@Tail",
}
UNREACHABLE = "127.0.0.1:1"
APP_SOURCE = """
from jobengine import Engine

engine = Engine()


@engine.job
def add(a: int, b: int) -> int:
    return a + b
"""


def pieces(password: str) -> list[str]:
    """The password and its parts between URL punctuation (what a misreading driver quotes)."""
    return [password, *(piece for piece in re.split(r"[#/?@]", password) if len(piece) >= 4)]


def assert_hidden(text: str, password: str, where: str) -> None:
    for piece in pieces(password):
        assert piece not in text, f"{piece!r} of the password shows in {where}:\n{text}"


def forms(password: str, host: str = "127.0.0.1:5432") -> dict[str, str]:
    """The ways a password reaches a URL or a connection string."""
    encoded = quote(password, safe="")
    return {
        "as typed": f"postgresql://postgres:{password}@{host}/test",
        "percent-encoded": f"postgresql://postgres:{encoded}@{host}/test",
        "?password=": f"postgresql://postgres@{host}/test?password={encoded}",
        "&password=": f"postgresql://postgres@{host}/test?sslmode=disable&password={encoded}",
        "?password= as typed": f"postgresql://postgres@{host}/test?password={password}",
        "key=value": f"host=127.0.0.1 user=postgres password={password} dbname=test",
        "key='value'": f"host=127.0.0.1 user=postgres password='{password} x' dbname=test",
    }


# -- the masking rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", list(PASSWORDS.values()), ids=list(PASSWORDS))
@pytest.mark.parametrize("libpq", ["with psycopg", "without psycopg"])
def test_every_form_of_a_password_is_masked(
    password: str, libpq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if libpq == "without psycopg":  # the text rules alone, as where the postgres extra is absent
        monkeypatch.setitem(sys.modules, "psycopg.conninfo", None)
    for form, url in forms(password).items():
        masked = mask_url(url)
        assert_hidden(masked, password, f"the {form} form {masked!r}")
        assert MASK in masked and "postgres" in masked, (form, masked)
        assert describe(url) == masked
        assert_hidden(mask_text(f"cannot reach {url} now"), password, form)


def test_what_is_not_a_secret_is_kept() -> None:
    assert mask_url("postgresql://postgres@127.0.0.1:5432/test") == (
        "postgresql://postgres@127.0.0.1:5432/test"
    )
    assert mask_url("sqlite:////var/lib/jobs.db") == "sqlite:////var/lib/jobs.db"
    assert mask_url("postgresql://ada:x@db.example:5432/jobs?sslmode=require") == (
        "postgresql://ada:***@db.example:5432/jobs?sslmode=require"
    )


def test_a_message_quoting_a_misread_password_is_scrubbed() -> None:
    url = "postgresql://postgres:Atsign@Secret2024@127.0.0.1:1/test"
    message = "failed to resolve host 'Secret2024@127.0.0.1': Name or service not known"
    assert (
        scrub(message, [url]) == "failed to resolve host '***@127.0.0.1': Name or service not known"
    )
    assert scrub("user postgres on 127.0.0.1", [url]) == "user postgres on 127.0.0.1"


def test_settings_are_redacted_by_the_names_of_their_keys() -> None:
    settings = {
        "database_url": "postgresql://ada:Hash#Secret2024@db/jobs",
        "DB_PASSWORD": "Slash/Secret2024",
        "apiKey": "k-123456",
        "web": {"tokens": ["t-1", "t-2"], "session_secret": "s3cr3t", "host": "127.0.0.1"},
        "queues": ["default", "mail"],
        "monkey_count": 3,
        "password_hint": "",
    }
    assert redact(settings) == {
        "database_url": "postgresql://ada:***@db/jobs",
        "DB_PASSWORD": MASK,
        "apiKey": MASK,
        "web": {"tokens": MASK, "session_secret": MASK, "host": "127.0.0.1"},
        "queues": ["default", "mail"],
        "monkey_count": 3,
        "password_hint": "",
    }


# -- real commands -------------------------------------------------------------------------------


def jobengine(
    folder: Path, *arguments: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JOBENGINE_LOG_FILE": ""}
    environment.pop("JOBENGINE_DATABASE_URL", None)
    if url is not None:
        environment["JOBENGINE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "jobengine", *arguments],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def with_password(postgres_url: str, password: str, form: str) -> str:
    """The test's own schema on the real server, reached with `password` in `form`."""
    encoded = quote(password, safe="")
    if form == "userinfo":
        return postgres_url.replace("postgres@", f"postgres:{encoded}@", 1)
    return f"{postgres_url}&password={encoded}"


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["userinfo", "?password="])
@pytest.mark.parametrize("password", list(PASSWORDS.values()), ids=list(PASSWORDS))
def test_db_status_shows_the_url_without_its_password(
    postgres_url: str, tmp_path: Path, password: str, form: str
) -> None:
    url = with_password(postgres_url, password, form)
    by_option = jobengine(tmp_path, "--database-url", url, "db", "status")
    by_variable = jobengine(tmp_path, "db", "status", url=url)
    for result in (by_option, by_variable):
        assert result.returncode == 0, result.stderr
        assert_hidden(result.stdout + result.stderr, password, "`db status`")
        shown = result.stdout.splitlines()[0]
        assert shown.startswith("database: postgresql://postgres")
        assert "127.0.0.1:5432/test" in shown and MASK in shown
    helped = subprocess.run(
        [sys.executable, "-m", "jobengine", "--help"],
        env={**os.environ, "JOBENGINE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert_hidden(helped.stdout, password, "--help")


@pytest.mark.parametrize("password", list(PASSWORDS.values()), ids=list(PASSWORDS))
def test_refused_connections_never_print_the_password(tmp_path: Path, password: str) -> None:
    """Unencoded passwords that libpq misreads and quotes in part, and encoded ones to a port
    nobody listens on: `db status` and `jobs` (in this process), each a clear error."""
    for form, url in forms(password, UNREACHABLE).items():
        url = url.replace("host=127.0.0.1", "host=127.0.0.1 port=1")
        for arguments in (["db", "status"], ["jobs"]):
            result = CliRunner().invoke(main, ["--database-url", url, *arguments])
            assert result.exit_code == 1, result.output
            assert result.stderr.startswith("Error: ") and "Traceback" not in result.output
            where = f"`{' '.join(arguments)}` with the {form} form"
            assert_hidden(result.output, password, where)


@pytest.mark.parametrize("form", ["as typed", "?password=", "key=value"])
@pytest.mark.parametrize("password", list(PASSWORDS.values()), ids=list(PASSWORDS))
def test_a_worker_on_an_unreachable_database_never_prints_the_password(
    tmp_path: Path, password: str, form: str
) -> None:
    url = forms(password, UNREACHABLE)[form].replace("host=127.0.0.1", "host=127.0.0.1 port=1")
    result = jobengine(tmp_path, "worker", "--log-file", "worker.log", url=url)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    log = tmp_path / "worker.log"
    written = log.read_text() if log.exists() else ""
    assert_hidden(result.stdout + result.stderr + written, password, "the worker's output")


@pytest.fixture
def app_folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "secret_app.py").write_text(APP_SOURCE)
    yield tmp_path
    sys.modules.pop("secret_app", None)


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_a_supervisor_and_its_worker_never_show_the_password(
    postgres_url: str, app_folder: Path
) -> None:
    password = PASSWORDS["all four"]
    url = with_password(postgres_url, password, "userinfo")
    command = [sys.executable, "-m", "jobengine", "--app", "secret_app", "--database-url", url]
    options = ["run", "--workers", "1", "--poll-interval", "0.1", "--log-file", "engine.log"]
    environment = {key: value for key, value in os.environ.items() if "JOBENGINE" not in key}
    with open(app_folder / "stderr.txt", "w") as stderr:
        supervisor = subprocess.Popen(
            [*command, *options], cwd=app_folder, env=environment, stderr=stderr
        )
    engine = Engine(postgres_url)
    engine.job(lambda a, b: a + b, name="add")
    try:
        job_id = engine.submit("add", a=1, b=2)
        wait_for(lambda: engine.get(job_id).status is Status.SUCCESS, 60, "the job to run")
        children = psutil.Process(supervisor.pid).children()
        assert children, "the supervisor runs one worker"
        for child in children:
            assert_hidden(" ".join(child.cmdline()), password, "a worker's command line")
        listed = jobengine(app_folder, "workers", url=url)
        assert listed.returncode == 0, listed.stderr
        assert_hidden(listed.stdout + listed.stderr, password, "`workers`")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(60) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(10)
        engine.close()
    logs = sorted(app_folder.glob("engine*.log"))
    assert len(logs) == 2, logs  # the supervisor's own, and its worker's
    written = "".join(path.read_text() for path in logs) + (app_folder / "stderr.txt").read_text()
    assert "start job" in written and "supervisor" in written
    assert_hidden(written, password, "the log files and stderr")
    check_invariants(postgres_url)
