"""The reaper: dead workers are noticed and every job they held is released, retried or failed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from waiting import wait_for
from worker_processes import ACTIVE, App, events_by_job, pause_cleanly

from jobengine import Engine, ManualClock, Status
from jobengine.reaper import IDEMPOTENT_ATTEMPT_LIMIT, Reaper
from jobengine.store import Move, WorkerRecord

DEAD_AFTER = 20.0


@pytest.fixture
def types(engine: Engine) -> Engine:
    """The engine fixture plus job types with one attempt, several, and idempotent."""
    engine.job(lambda: None, name="once")
    engine.job(lambda: None, name="thrice", max_attempts=3)
    engine.job(lambda: None, name="idempotent", idempotent=True)
    return engine


def add_worker(
    engine: Engine,
    name: str,
    host: str = "elsewhere",
    pid: int = 4242,
    state: str = "running",
    started_at: float | None = None,
) -> str:
    now = engine.clock.now()
    worker = f"{host}:{pid}:{name}"
    record = WorkerRecord(worker, host, pid, started_at or now, now, [], 10, "0", state)
    engine.store.workers.register(record)
    return worker


def hold(engine: Engine, worker: str, job_type: str, status: Status, attempt: int = 1) -> int:
    """A job of `job_type` held by `worker` in `status` (QUEUED, RUNNING or TO_CANCEL)."""
    job_id = engine.submit(job_type, max_attempts=None)
    now = engine.clock.now()
    store = engine.store
    if attempt > 1:
        with store.database.transaction() as transaction:
            transaction.execute("UPDATE jobs SET attempt = ? WHERE id = ?", (attempt, job_id))
    with store.database.transaction() as transaction:
        transaction.execute(
            "UPDATE jobs SET status = 'QUEUED', worker = ?, heartbeat = ? WHERE id = ?",
            (worker, now, job_id),
        )
    if status is not Status.QUEUED:
        start = Move(job_id, attempt, Status.QUEUED, Status.RUNNING, "start", worker, worker=worker)
        store.jobs.move(start, now)
    if status is Status.TO_CANCEL:
        engine.cancel(job_id)
    assert engine.get(job_id).status is status
    return job_id


def reaper(engine: Engine, actor: str = "peer") -> Reaper:
    return Reaper(engine.store, engine.registry, actor, DEAD_AFTER, engine.clock.now)


def last_event(engine: Engine, job_id: int) -> tuple[str, str, str]:
    event = engine.events(job_id)[-1]
    return event.verb, event.to_status.value, event.reason or ""


def test_silent_worker_is_declared_dead_and_each_job_dealt_with(
    types: Engine, clock: ManualClock
) -> None:
    worker = add_worker(types, "a")
    queued = hold(types, worker, "once", Status.QUEUED)
    retried = hold(types, worker, "thrice", Status.RUNNING)
    failed = hold(types, worker, "once", Status.RUNNING)
    idempotent = hold(types, worker, "idempotent", Status.RUNNING)
    canceling = hold(types, worker, "once", Status.TO_CANCEL)
    clock.advance(DEAD_AFTER - 1)
    assert reaper(types).reap() == 0
    clock.advance(2)
    assert reaper(types).reap() == 5
    why = f"worker {worker} stopped heartbeating at "
    assert types.store.workers.find()[0].state == "dead"
    assert last_event(types, queued)[:2] == ("release", "PENDING")
    assert types.get(queued).worker is None and types.get(queued).attempt == 1
    for job_id in (retried, idempotent):
        assert last_event(types, job_id)[:2] == ("retry", "PENDING")
        assert types.get(job_id).attempt == 2 and types.get(job_id).worker is None
    assert last_event(types, failed)[:2] == ("reap", "FAILURE")
    assert "worker died while running this job" in last_event(types, failed)[2]
    assert "worker died while running this job" in (types.get(failed).errors or "")
    assert last_event(types, canceling)[:2] == ("cancel", "CANCELED")
    for job_id in (queued, retried, failed, idempotent, canceling):
        assert last_event(types, job_id)[2].startswith(why), last_event(types, job_id)
        assert last_event(types, job_id)[2].count("UTC") == 1
        lines = [line.text for line in types.log(job_id)]
        assert any(why in line for line in lines), lines
    assert not types.list(status=ACTIVE)


def test_living_worker_and_its_jobs_are_left_alone(types: Engine, clock: ManualClock) -> None:
    worker = add_worker(types, "a")
    job_id = hold(types, worker, "once", Status.RUNNING)
    for _ in range(5):
        clock.advance(DEAD_AFTER / 2)
        types.store.workers.beat(worker, clock.now(), "running")
        assert reaper(types).reap() == 0
    assert types.get(job_id).status is Status.RUNNING
    assert types.store.workers.find()[0].state == "running"


def test_a_beat_after_the_reapers_read_saves_the_worker(types: Engine, clock: ManualClock) -> None:
    """The decision is taken again under the worker's row lock: a late beat wins."""
    worker = add_worker(types, "a")
    job_id = hold(types, worker, "once", Status.RUNNING)
    clock.advance(DEAD_AFTER + 1)
    to_reap = types.store.workers.to_reap(clock.now() - DEAD_AFTER)
    assert to_reap == [worker]
    types.store.workers.beat(worker, clock.now(), "running")
    assert reaper(types).reap_worker(worker, clock.now(), clock.now() - DEAD_AFTER) == 0
    assert types.get(job_id).status is Status.RUNNING


def test_several_reapers_at_once_move_each_job_once(types: Engine, clock: ManualClock) -> None:
    worker = add_worker(types, "a")
    jobs = [hold(types, worker, "thrice", Status.RUNNING) for _ in range(5)]
    clock.advance(DEAD_AFTER + 1)
    moved = [reaper(types, f"peer-{n}").reap() for n in range(3)]
    assert sorted(moved) == [0, 0, 5]
    for job_id in jobs:
        assert [event.verb for event in types.events(job_id)].count("retry") == 1


def test_late_outcome_of_a_reaped_worker_is_refused(types: Engine, clock: ManualClock) -> None:
    worker = add_worker(types, "a")
    job_id = hold(types, worker, "thrice", Status.RUNNING)
    clock.advance(DEAD_AFTER + 1)
    reaper(types).reap()
    late = Move(
        job_id,
        1,
        Status.RUNNING,
        Status.SUCCESS,
        "finish",
        worker,
        changes={"result": "1"},
        worker=worker,
    )
    assert types.store.jobs.move_many([late], clock.now()) == [False]
    job = types.get(job_id)
    assert (job.status, job.attempt, job.result) == (Status.PENDING, 2, None)


def test_idempotent_jobs_are_not_retried_for_ever(types: Engine, clock: ManualClock) -> None:
    worker = add_worker(types, "a")
    job_id = hold(types, worker, "idempotent", Status.RUNNING, IDEMPOTENT_ATTEMPT_LIMIT)
    clock.advance(DEAD_AFTER + 1)
    reaper(types).reap()
    assert last_event(types, job_id)[:2] == ("reap", "FAILURE")


def test_jobs_of_a_stopped_worker_are_recovered_at_once(types: Engine, clock: ManualClock) -> None:
    worker = add_worker(types, "a")
    job_id = hold(types, worker, "thrice", Status.RUNNING)
    types.store.workers.stop(worker, clock.now())
    assert reaper(types).reap() == 1
    verb, status, reason = last_event(types, job_id)
    assert (verb, status) == ("retry", "PENDING")
    assert "without recording this job" in reason


def test_jobs_of_an_unregistered_worker_wait_for_their_own_heartbeat(
    types: Engine, clock: ManualClock
) -> None:
    job_id = hold(types, "ghost", "once", Status.RUNNING)
    assert reaper(types).reap() == 0
    clock.advance(DEAD_AFTER + 1)
    assert reaper(types).reap() == 1
    verb, status, reason = last_event(types, job_id)
    assert (verb, status) == ("reap", "FAILURE")
    assert reason.startswith("worker ghost is not registered and stopped heartbeating at ")


def ended_process() -> int:
    """The pid of a process that has exited (and been waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_previous_incarnation_on_this_host_is_recovered_at_start_up(
    types: Engine, clock: ManualClock
) -> None:
    host = socket.gethostname()
    gone = add_worker(types, "gone", host, ended_process())
    living = add_worker(types, "living", host, os.getpid())
    remote = add_worker(types, "remote", "elsewhere", ended_process())
    jobs = {
        worker: hold(types, worker, "once", Status.RUNNING) for worker in (gone, living, remote)
    }
    own = add_worker(types, "own", host, os.getpid())
    assert reaper(types, own).recover_earlier_workers(host, own) == 1
    assert types.get(jobs[gone]).status is Status.FAILURE
    assert "is gone" in last_event(types, jobs[gone])[2]
    assert types.get(jobs[living]).status is Status.RUNNING
    assert types.get(jobs[remote]).status is Status.RUNNING
    states = {record.id: record.state for record in types.store.workers.find()}
    assert states == {gone: "dead", living: "running", remote: "running", own: "running"}


def test_a_zombie_or_a_reused_pid_is_not_the_worker(types: Engine, clock: ManualClock) -> None:
    host = socket.gethostname()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    watched = psutil.Process(zombie.pid)
    wait_for(lambda: watched.status() == psutil.STATUS_ZOMBIE, 30, "a zombie")
    clock.set(time.time())
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # the worker row (beating until now) predates the process that now has its pid
        reused = add_worker(types, "reused", host, newer.pid, started_at=time.time() - 3600)
        dead_zombie = add_worker(types, "zombie", host, zombie.pid)
        held = [hold(types, worker, "thrice", Status.RUNNING) for worker in (reused, dead_zombie)]
        assert reaper(types, "own").recover_earlier_workers(host, "own") == 2
        assert [types.get(job_id).status for job_id in held] == [Status.PENDING] * 2
    finally:
        newer.kill()
        newer.wait()
        zombie.wait()


def test_workers_overview_shows_operator_states(types: Engine, clock: ManualClock) -> None:
    alive = add_worker(types, "alive")
    hold(types, alive, "once", Status.RUNNING)
    hold(types, alive, "once", Status.QUEUED)
    draining = add_worker(types, "draining", state="draining")
    silent = add_worker(types, "silent")
    stopped = add_worker(types, "stopped", state="stopped")
    clock.advance(DEAD_AFTER + 1)
    for worker in (alive, draining):
        types.store.workers.beat(
            worker, clock.now(), "draining" if worker == draining else "running"
        )
    overview = types.store.workers.overview(clock.now(), DEAD_AFTER, include_stopped=True)
    states = {line.record.id: (line.state, line.running_jobs) for line in overview}
    assert states == {
        alive: ("alive", 2),
        draining: ("draining", 0),
        silent: ("dead", 0),
        stopped: ("stopped", 0),
    }
    assert {line.heartbeat_age for line in overview if line.record.id == silent} == {DEAD_AFTER + 1}
    hidden = types.store.workers.overview(clock.now(), DEAD_AFTER)
    assert stopped not in {line.record.id for line in hidden}


# -- real processes ----------------------------------------------------------------------------

FAST = ("--heartbeat-interval", "0.5", "--dead-after", "3")


@pytest.mark.timeout(120)
def test_sigkill_of_a_worker_its_running_jobs_move_on_by_a_peer(
    database_url: str, tmp_path: Path
) -> None:
    """The heartbeat path: no supervisor, no restart; a peer notices the silence."""
    app = App(tmp_path, database_url)
    try:
        victim = app.worker(*FAST, log="victim.log")
        app.registered(victim.pid)
        names = ["nap", "nap_retried", "nap_idempotent"]
        jobs = {name: app.engine.submit(name, seconds=600) for name in names}
        held = wait_for(
            lambda: all(app.engine.get(i).status is Status.RUNNING for i in jobs.values()),
            60,
            "the victim to run every job",
        )
        assert held
        peer = app.worker(*FAST, log="peer.log")
        peer_id = app.registered(peer.pid).id
        victim.send_signal(signal.SIGKILL)
        killed = time.time()
        victim.wait(10)

        def moved_on() -> bool:
            current = [app.engine.get(i) for i in jobs.values()]
            return all(job.attempt > 1 or job.status not in ACTIVE for job in current)

        wait_for(moved_on, 60, "every job of the killed worker to move on")
        check_recovered(app, jobs, peer_id, killed)
    finally:
        app.close()


def check_recovered(app: App, jobs: dict[str, int], peer_id: str, killed: float) -> None:
    events = events_by_job(app.engine)
    latency = []
    for name, job_id in jobs.items():
        recovery = next(e for e in events[job_id] if e["verb"] in ("retry", "reap"))
        assert recovery["actor"] == peer_id
        assert "stopped heartbeating at" in str(recovery["reason"])
        latency.append(float(recovery["at"]) - killed)  # type: ignore[arg-type]
        expected = "FAILURE" if name == "nap" else "PENDING"
        assert recovery["to_status"] == expected, (name, recovery)
    print(f"recovered {len(jobs)} jobs {min(latency):.1f}-{max(latency):.1f} s after SIGKILL")


@pytest.mark.timeout(150)
def test_paused_worker_resumes_and_its_late_results_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    app = App(tmp_path, database_url)
    try:
        paused = app.worker(*FAST, log="paused.log")
        paused_id = app.registered(paused.pid).id
        job_ids = [app.engine.submit("nap_retried", seconds=8) for _ in range(3)]
        wait_for(
            lambda: all(app.engine.get(i).status is Status.RUNNING for i in job_ids),
            60,
            "the jobs to run",
        )
        pause_cleanly(paused, app.engine, job_ids)
        peer = app.worker(*FAST, log="peer.log")
        peer_id = app.registered(peer.pid).id
        wait_for(
            lambda: all(
                (job := app.engine.get(i)).status is Status.RUNNING and job.worker == peer_id
                for i in job_ids
            ),
            90,
            "the peer to run every job again",
        )
        paused.send_signal(signal.SIGCONT)
        wait_for(
            lambda: app.log("paused.log").count("the job was recovered from this worker") == 3,
            30,
            "the resumed worker to be refused three times",
        )
        wait_for(
            lambda: all(app.engine.get(i).status is Status.SUCCESS for i in job_ids),
            60,
            "the peer to finish",
        )
    finally:
        app.close()
    check_only_the_peer_recorded(app, job_ids, (paused_id, peer_id, peer.pid))


def check_only_the_peer_recorded(
    app: App, job_ids: list[int], workers: tuple[str, str, int]
) -> None:
    paused_id, peer_id, peer_pid = workers
    events = events_by_job(app.engine)
    for job_id in job_ids:
        job = app.engine.get(job_id)
        assert (job.attempt, job.worker, job.result) == (2, peer_id, peer_pid)
        finishes = [e for e in events[job_id] if e["verb"] == "finish"]
        assert [(e["actor"], e["attempt"]) for e in finishes] == [(peer_id, 2)]
        retry = next(e for e in events[job_id] if e["verb"] == "retry")
        assert retry["actor"] == peer_id and paused_id in str(retry["reason"])
    assert app.executions() == {job_id: 2 for job_id in job_ids}
