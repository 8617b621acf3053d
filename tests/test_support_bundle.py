"""`jobengine support-bundle`: one .tar.gz with every part a support ticket needs, and no
secret in any of its files."""

from __future__ import annotations

import json
import socket
import tarfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from diagnosis_steps import DiagnosisApp, cli, diagnosis_app
from waiting import wait_for, wait_for_status

from jobengine import Status
from jobengine.store import Store

pytestmark = pytest.mark.timeout(180)
# Passwords with the characters that break URLs, planted everywhere a secret can hide.
IN_URL = "S3cr#t/pa?ss-one"  # the user information of the database URL (PostgreSQL)
IN_QUERY = "Pl4nt#ed/q?-two"  # ?password= of the URL on a worker's command line (PostgreSQL)
WEB_PASSWORD = "w3b#pass/word?-three"  # JOBENGINE_WEB_PASSWORD
TOKEN = "t0ken#with/slash?-four"  # JOBENGINE_WEB_TOKENS
IN_DSN = "ds#n/pa?ss-five"  # inside a job's arguments and errors, unencoded
IN_LOG = "l0g#line/pa?ss-six"  # password=... in a job's own log line
SECRETS = [IN_URL, IN_QUERY, WEB_PASSWORD, TOKEN, IN_DSN, IN_LOG]


def urls(database_url: str) -> tuple[str, str]:
    """(the engine's URL, a worker's URL), with passwords on PostgreSQL (trust ignores them)."""
    if not database_url.startswith("postgresql"):
        return database_url, database_url
    with_user_password = database_url.replace("postgres@", f"postgres:{quote(IN_URL, safe='')}@")
    return with_user_password, f"{database_url}&password={quote(IN_QUERY, safe='')}"


def seed(app: DiagnosisApp, worker_url: str, log_file: Path) -> dict[str, int]:
    """A worker process, a running job, a failed one, ended ones, a schedule."""
    app.registered(app.worker("--log-file", str(log_file), url=worker_url))
    engine = app.engine
    jobs = {
        "old_success": engine.submit("nap", seconds=0),
        "unnamed_success": engine.submit("nap", seconds=0),
        "failed": engine.submit("connect", dsn=f"postgresql://app:{IN_DSN}@db/x", password=IN_LOG),
    }
    for job_id in jobs.values():
        wait_for_status(engine, job_id, {Status.SUCCESS, Status.FAILURE}, timeout=60)
    jobs["running"] = engine.submit("chatty", line="copying files", seconds=120)
    jobs["later"] = engine.submit("nap", seconds=1, delay=3600)
    wait_for(lambda: engine.log(jobs["running"]), 30, "the running job's log line")
    engine.schedules.add("hourly", "nap", every=3600, arguments={"seconds": 0})
    with log_file.open("a") as log:  # what an application may write in the engine's log
        log.write(f"app: logging in with JOBENGINE_WEB_PASSWORD {WEB_PASSWORD}\n")
    return jobs


def read_bundle(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as archive:
        members = [member for member in archive.getmembers() if member.isfile()]
        root = members[0].name.split("/")[0]
        assert root.startswith("jobengine-support-")
        return {
            member.name.removeprefix(root + "/"): archive.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in members
        }


def test_the_bundle_holds_every_part_and_no_secret(tmp_path: Path, database_url: str) -> None:
    engine_url, worker_url = urls(database_url)
    log_file = tmp_path / "jobengine.log"
    output = tmp_path / "bundle.tar.gz"
    environment = {
        "JOBENGINE_WEB_PASSWORD": WEB_PASSWORD,
        "JOBENGINE_WEB_TOKENS": TOKEN,
        "JOBENGINE_WEB_PUBLIC_URL": "https://jobs.example.com",
    }
    with diagnosis_app(tmp_path, engine_url) as app:
        jobs = seed(app, worker_url, log_file)
        worker_pid = app.processes[0].pid
        arguments = ["support-bundle", "-o", str(output), "--job", str(jobs["old_success"])]
        result = cli(engine_url, *arguments, "--log-file", str(log_file), **environment)

        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"wrote {output} (")
        files = read_bundle(output)

    assert_every_part(files, jobs, worker_pid)
    for name, text in files.items():
        for secret in SECRETS:
            for form in {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}:
                assert form not in text, f"{form!r} found in {name}"
    assert output.stat().st_mode & 0o077 == 0, "only its owner may read the bundle"


def assert_every_part(files: dict[str, str], jobs: dict[str, int], worker_pid: int) -> None:
    for name in [
        "README.txt",
        "doctor.txt",
        "doctor.json",
        "workers.txt",
        "workers.json",
        "processes.json",
        "engine.log",
        "schedules.json",
        "versions.json",
        "configuration.json",
    ]:
        assert name in files, name
        assert name in files["README.txt"], f"the README does not say what {name} is"
    assert "jobs/" in files["README.txt"]
    assert files["doctor.txt"].splitlines()[0].startswith("OK    database: ")
    assert {check["name"] for check in json.loads(files["doctor.json"])["checks"]} >= {"workers"}
    workers = json.loads(files["workers.json"])
    assert [worker["pid"] for worker in workers] == [worker_pid]
    processes = {row["pid"]: row for row in json.loads(files["processes.json"])}
    assert "jobengine" in processes[worker_pid]["command_line"]
    assert {"cpu_percent", "memory_rss_bytes", "started_at"} <= set(processes[worker_pid])
    assert f"worker {workers[0]['id']} started" in files["engine.log"]
    assert_jobs(files, jobs)
    schedules = json.loads(files["schedules.json"])
    assert schedules[0]["name"] == "hourly" and len(schedules[0]["next_fire_times"]) == 5
    versions = json.loads(files["versions.json"])
    assert versions["jobengine"] and versions["python"] and versions["database"] != "unknown"
    environment = json.loads(files["configuration.json"])["environment"]
    assert environment["JOBENGINE_WEB_PASSWORD"] == environment["JOBENGINE_WEB_TOKENS"] == "***"


def assert_jobs(files: dict[str, str], jobs: dict[str, int]) -> None:
    included = {"old_success", "failed", "running", "later"}  # named, failed, not ended
    for key, job_id in jobs.items():
        names = {f"jobs/{job_id}.json", f"jobs/{job_id}.log", f"jobs/{job_id}.timeline.txt"}
        assert (names <= set(files)) == (key in included), key
    running = json.loads(files[f"jobs/{jobs['running']}.json"])
    assert running["job"]["url"] == f"https://jobs.example.com/jobs/{jobs['running']}"
    assert running["why"]["code"] == "running"
    assert [event["verb"] for event in running["events"]] == ["submit", "claim", "start"]
    assert "copying files" in files[f"jobs/{jobs['running']}.log"]
    timeline = files[f"jobs/{jobs['failed']}.timeline.txt"]
    assert timeline.startswith(f"job {jobs['failed']} https://jobs.example.com/jobs/")
    assert (
        "finish" in timeline
        and "ConnectionError: cannot connect to postgresql://app:***@db/x" in (timeline)
    )
    failed = json.loads(files[f"jobs/{jobs['failed']}.json"])
    assert failed["job"]["arguments"]["password"] == "***"


def test_a_bundle_without_the_log_file_says_so(tmp_path: Path, database_url: str) -> None:
    output = tmp_path / "bundle.tar.gz"
    missing = tmp_path / "nowhere.log"

    result = cli(database_url, "support-bundle", "-o", str(output), "--log-file", str(missing))

    assert result.exit_code == 0, result.output
    files = read_bundle(output)
    assert "engine.log" not in files
    assert "(no engine.log: the log file was not found; pass --log-file)" in files["README.txt"]


def test_a_bundle_names_the_jobs_it_could_not_find(tmp_path: Path, database_url: str) -> None:
    output = tmp_path / "bundle.tar.gz"
    Store.open(database_url).close()  # a bundle is of an existing database

    result = cli(database_url, "support-bundle", "-o", str(output), "--job", "4242")

    assert result.exit_code == 0, result.output
    assert read_bundle(output)["jobs/missing.txt"] == "no job has id 4242\n"


def test_a_bundle_is_written_when_the_database_is_down(tmp_path: Path) -> None:
    output = tmp_path / "bundle.tar.gz"
    with socket.socket() as closed:  # a port nothing listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = f"postgresql://postgres:{quote(IN_URL, safe='')}@127.0.0.1:{port}/test"

    result = cli(down, "support-bundle", "-o", str(output))

    assert result.exit_code == 0, result.output
    files = read_bundle(output)
    assert {"doctor.txt", "versions.json", "configuration.json", "processes.json"} <= set(files)
    assert "FAIL  database: cannot use postgresql://postgres:***@" in files["doctor.txt"]
    assert "Connection refused" in files["unreadable.txt"]
    assert json.loads(files["versions.json"])["database"].startswith("not reached: cannot")
    assert "unreadable.txt" in files["README.txt"]
    assert not any(IN_URL in text or quote(IN_URL, safe="") in text for text in files.values())


def test_a_bundle_that_cannot_be_written_is_one_clear_line(database_url: str) -> None:
    result = cli(database_url, "support-bundle", "-o", "/nonexistent-folder/bundle.tar.gz")

    assert result.exit_code == 1
    assert result.stderr.strip().startswith(
        "Error: cannot write the bundle to '/nonexistent-folder/bundle.tar.gz'"
    )


def test_the_dashboard_seam_builds_the_same_bundle(tmp_path: Path, database_url: str) -> None:
    from jobengine.web import seams

    with diagnosis_app(tmp_path, database_url) as app:
        app.engine.submit("nap", seconds=1, delay=3600)
        data = seams.support_bundle(app.engine)

    assert data is not None
    path = tmp_path / "from-the-dashboard.tar.gz"
    path.write_bytes(data)
    assert {"README.txt", "doctor.json", "jobs/1.json"} <= set(read_bundle(path))
