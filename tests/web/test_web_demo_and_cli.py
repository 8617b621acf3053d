"""`make demo` and `jobengine web`: they start, serve the dashboard, and stop on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from waiting import wait_for

from jobengine import ConfigurationError, Engine, Status
from jobengine.cli import main as cli
from jobengine.cli.web import dashboard_from_environment
from jobengine.demo import Demo
from jobengine.store.wakeup import wakeup_folder

pytestmark = pytest.mark.timeout(60)
URL = re.compile(r"(http://127\.0\.0\.1:\d+)")


def test_the_demo_runs_jobs_fires_its_schedule_and_serves_the_dashboard(tmp_path: Path) -> None:
    demo = Demo(tmp_path, port=0, recurring_every=1, schedule_interval=0.5).start()
    try:
        engine, url = demo.engine, demo.server.url
        text = demo.announce()
        assert url in text and "Three things to try" in text
        assert f"/jobs/{demo.jobs['loop_forever']}" in text
        wait_for(lambda: engine.get(demo.jobs["greet"]).status is Status.SUCCESS, 20)
        wait_for(lambda: engine.get(demo.jobs["provision"]).status is Status.FAILURE, 20)
        wait_for(lambda: engine.list(type="heartbeat_report"), 20, "the recurring job to fire")
        looping = demo.jobs["loop_forever"]
        wait_for(lambda: engine.log(looping), 20, "the looping job to log")
        page = httpx.get(f"{url}/jobs/{looping}", timeout=10)
        assert page.status_code == 200 and "still looping" in page.text
        assert "heartbeat_report" in httpx.get(f"{url}/schedules", timeout=10).text
    finally:
        demo.stop()
    assert not demo.thread.is_alive()


@dataclass
class Served:
    """A command serving the dashboard, its URL, and the thread reading the rest of its output."""

    process: subprocess.Popen[str]
    url: str
    reader: threading.Thread


def serve(arguments: list[str], cwd: Path, **environment: str) -> Served:
    """Start `python -m <arguments>` and wait for the dashboard URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **environment},
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        found = URL.search(line)
        if found:
            reader = threading.Thread(target=process.stdout.read, daemon=True)  # never blocks it
            reader.start()
            return Served(process, found.group(1), reader)
        if len(seen) > 200:
            break
    process.kill()
    process.wait()
    process.stdout.close()
    raise AssertionError("no dashboard URL printed:\n" + "".join(seen))


def stop(served: Served, how: signal.Signals) -> int:
    """Send `how`; the exit status (the process is killed if it has not exited in 30 s)."""
    process = served.process
    process.send_signal(how)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        served.reader.join(10)
        assert process.stdout is not None
        process.stdout.close()


def test_make_demo_runs_until_ctrl_c(tmp_path: Path) -> None:
    served = serve(["jobengine.demo"], tmp_path)
    assert httpx.get(f"{served.url}/healthz", timeout=10).json()["status"] == "ok"
    assert stop(served, signal.SIGINT) == 0
    assert (tmp_path / "demo-run" / "demo.db").exists()


def test_make_demo_stops_on_sigterm_too(tmp_path: Path) -> None:
    served = serve(["jobengine.demo"], tmp_path)
    assert httpx.get(f"{served.url}/healthz", timeout=10).json()["status"] == "ok"
    assert stop(served, signal.SIGTERM) == 0


def test_make_demo_starts_again_after_a_demo_was_killed() -> None:
    """A killed demo leaves its database and its wake-up folder (a socket in it) behind."""
    with tempfile.TemporaryDirectory() as short:  # the wake-up folder fits beside the file
        folder = Path(short)
        killed = serve(["jobengine.demo"], folder)
        wakeup = wakeup_folder(str(folder / "demo-run" / "demo.db"))
        assert wakeup.parent == folder / "demo-run"
        wait_for(lambda: wakeup.is_dir() and any(wakeup.iterdir()), 20)  # its worker listens
        assert stop(killed, signal.SIGKILL) == -signal.SIGKILL

        served = serve(["jobengine.demo"], folder)
        assert httpx.get(f"{served.url}/healthz", timeout=10).json()["status"] == "ok"
        assert stop(served, signal.SIGINT) == 0


def test_jobengine_web_serves_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "web.db").touch()  # `jobengine web` serves an existing database, creates none
    database = f"sqlite:///{tmp_path / 'web.db'}"
    served = serve(["jobengine", "--database-url", database, "web", "--port", "0"], tmp_path)
    assert httpx.get(f"{served.url}/api/jobs", timeout=10).json()["jobs"] == []
    assert "Jobs" in httpx.get(f"{served.url}/jobs", timeout=10).text
    assert stop(served, signal.SIGTERM) == 0


def test_jobengine_web_refuses_a_public_address_without_a_password(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'web.db'}"
    result = CliRunner().invoke(
        cli, ["--database-url", database, "web", "--host", "0.0.0.0", "--port", "0"], env={}
    )
    assert result.exit_code == 1
    assert "JOBENGINE_WEB_PASSWORD" in result.output
    assert "Traceback" not in result.output


def test_jobengine_web_help_names_every_variable() -> None:
    result = CliRunner().invoke(cli, ["web", "--help"])
    assert result.exit_code == 0
    for variable in ("JOBENGINE_WEB_HOST", "JOBENGINE_WEB_PORT", "JOBENGINE_WEB_PASSWORD"):
        assert variable in result.output


def test_jobengine_run_web_serves_beside_the_workers(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'run.db'}"
    arguments = ["jobengine", "--database-url", database, "run", "--workers", "1", "--web"]
    served = serve([*arguments, "--log-file", ""], tmp_path, JOBENGINE_WEB_PORT="0")
    try:
        workers = wait_for(lambda: httpx.get(f"{served.url}/api/workers").json()["workers"])
        assert workers[0]["state"] == "alive"
    finally:
        assert stop(served, signal.SIGTERM) == 0


def test_run_web_reads_its_dead_after_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.setenv("JOBENGINE_WEB_PORT", "0")
    monkeypatch.setenv("JOBENGINE_WEB_DEAD_AFTER", "nan")
    with pytest.raises(
        ConfigurationError, match="JOBENGINE_WEB_DEAD_AFTER='nan': nan is not a usable number"
    ):
        dashboard_from_environment(engine)
    monkeypatch.setenv("JOBENGINE_WEB_DEAD_AFTER", "7")
    server = dashboard_from_environment(engine)
    try:
        assert server.config.dead_after == 7.0
    finally:
        server.socket.close()
        engine.close()
