"""`jobengine stack JOB` asks the job's worker (through a command row) where the job is now;
SIGUSR1 makes a worker write every thread's stack, labelled with job ids, to its log."""

from __future__ import annotations

from pathlib import Path

import pytest
from diagnosis_steps import DiagnosisApp, cli, diagnosis_app, send_usr1
from waiting import wait_for

from jobengine import Engine

pytestmark = pytest.mark.timeout(120)


def spinning(app: DiagnosisApp, job_id: int) -> None:
    """Wait until the job is inside its function (it logs 'spinning' first)."""
    logged = lambda: any(line.text.endswith(": spinning") for line in app.engine.log(job_id))  # noqa: E731
    wait_for(logged, 60, f"job {job_id} to start spinning")


@pytest.mark.parametrize("job_type", ["spin_in_known_function", "spin_in_process"])
def test_stack_shows_the_frame_of_a_job_stuck_in_a_known_function(
    tmp_path: Path, database_url: str, job_type: str
) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        app.registered(app.worker())
        job_id = app.engine.submit(job_type)
        spinning(app, job_id)

        result = cli(database_url, "stack", str(job_id))

        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].startswith(f"job {job_id} ({job_type}) attempt 1 on worker ")
        where = "process " if job_type == "spin_in_process" else "thread job-"
        assert where in lines[0]
        # The job function is the outermost frame shown; the engine's frames around it are not.
        assert lines[1].endswith(", in spin_in_known_function")
        assert lines[2].strip() == "while not ctx.cancel_requested:"
        assert "runner.py" not in result.output


def test_stack_as_json_names_the_frames(tmp_path: Path, database_url: str) -> None:
    with diagnosis_app(tmp_path, database_url) as app:
        app.registered(app.worker())
        job_id = app.engine.submit("spin_in_known_function")
        spinning(app, job_id)

        result = cli(database_url, "stack", str(job_id), "--json")

        assert result.exit_code == 0, result.output
        import json

        answer = json.loads(result.output)
        assert answer["job_id"] == job_id and answer["isolation"] == "thread"
        assert answer["frames"][0][2] == "spin_in_known_function"
        # The command row was answered and then deleted: nothing is left behind.
        with app.engine.store.database.transaction(write=False) as transaction:
            assert transaction.execute("SELECT COUNT(*) AS n FROM commands")[0]["n"] == 0


def test_stack_of_a_job_that_is_not_running_says_why_in_one_line(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2, delay=60)

    result = cli(engine.url, "stack", str(job_id))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: job {job_id} is PENDING, not running: scheduled for ")


def test_sigusr1_writes_every_thread_labelled_with_job_ids_to_the_worker_log(
    tmp_path: Path, database_url: str
) -> None:
    log_file = tmp_path / "jobengine.log"
    with diagnosis_app(tmp_path, database_url) as app:
        worker = app.worker("--log-file", str(log_file))
        app.registered(worker)
        in_thread = app.engine.submit("spin_in_known_function")
        in_process = app.engine.submit("spin_in_process")
        spinning(app, in_thread)
        spinning(app, in_process)

        send_usr1(worker)

        child = f"job {in_process} (spin_in_process) in "  # the last section: the whole dump
        written = wait_for(
            lambda: child in (text := log_file.read_text()) and "SIGUSR1" in text and text,
            30,
            "the whole dump",
        )
        dump = written[written.index("SIGUSR1") :]
        assert f"job {in_thread} (spin_in_known_function) attempt 1" in dump
        assert f"{child}process " in dump, dump[dump.index(child) :]
        assert dump.count("in spin_in_known_function") >= 2  # its thread, and its child
        for thread in ("thread MainThread", "thread recorder", "thread ladder", "thread listener"):
            assert thread in dump
        assert worker.poll() is None, "the worker goes on running after the dump"
