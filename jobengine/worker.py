"""The worker: claims due jobs up to its free capacity, runs them, records outcomes, stops them."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial

from jobengine import joblog, stacks
from jobengine.context import JobContext, StopKind, job_logger
from jobengine.engine import Engine
from jobengine.errors import DatabaseUnavailable, JobEngineError
from jobengine.executors import Executor, ProcessExecutor, Running, ThreadExecutor
from jobengine.heartbeat import Heartbeat
from jobengine.interrupts import SignalEvent
from jobengine.joblog import JobLog, LogWriter
from jobengine.ladder import Ladder
from jobengine.loglines import log_lines
from jobengine.model import ACTIVE, Job, Move
from jobengine.recorder import Record, Recorder, decide
from jobengine.retry import Backoff
from jobengine.runner import Outcome, run_job
from jobengine.settings import Settings as Settings
from jobengine.shutdown import shut_down
from jobengine.store.jobs import CANCEL_NOTICE, CHANNEL, Claim

log = logging.getLogger("jobengine.worker")
STOP_CHECK_INTERVAL = 0.1  # how often a worker with running jobs climbs the cancel ladder
# Jobs that compute in threads hold the GIL; the worker's own threads (its loop, heartbeats,
# cancels) wait up to this long for it at every step instead of CPython's default 5 ms.
SWITCH_INTERVAL = 0.001


class Worker:
    """One worker: `run()` until stopped, or `run_once()` / `drain()` in the caller's thread."""

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine, self.settings = engine, settings or Settings()
        self.store = engine.store
        self.clock = engine.clock
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.logs = LogWriter(self.store.logs)
        self.recorder = Recorder(self.store, self.logs, self.clock.now)
        concurrency, grace = self.settings.concurrency, self.settings.cancel_grace
        self.executors: dict[str, Executor] = {
            "thread": ThreadExecutor(concurrency, grace),
            "process": ProcessExecutor(
                concurrency, grace, self.settings.kill_grace, self.settings.log_cap
            ),
        }
        self.ladder = Ladder(
            self.store, self.executors, self.id, self.clock.now, self.recorder.note
        )
        self.running: dict[int, Running] = {}
        self.lock = threading.Lock()
        # Notified, outside run(), when a recorded job leaves `running`, for run_once (one for
        # all jobs: an Event per job cost a tenth of the recorder's time at full load).
        self.recorded = threading.Condition(self.lock)
        self.claiming = threading.Lock()  # one claim at a time: the loop's, recorder's, listener's
        # Set by stop(), which the command line calls from its signal handlers.
        self.wake, self.stopping = SignalEvent(), SignalEvent()
        self.stop_waiting = SignalEvent()  # a second stop: do not wait for running jobs
        self.cancel_notice = threading.Event()
        self.recording_done = threading.Event()
        self.draining = False
        self.fenced = False  # lost the database past dead_after: claims nothing
        # While jobs wait, claim only once this much capacity is free: a claim per job or two
        # would cost more than the wait for others. A quarter (decision 0009): the recorder's
        # claims ride in the transaction of the outcomes, so a smaller one costs little.
        self.batch = max(1, self.settings.concurrency // 4)
        self.backlog = False  # the last claim got all it asked for: more may be waiting
        self.exit_reason = "stopped"
        self.next_tick = self.next_cancel_poll = 0.0
        self.cancel_poll = self.store.database.cancel_poll
        self.heartbeat = Heartbeat(self.store, engine.registry, self.id, self.settings, self.clock)
        interval = self.settings.heartbeat_interval  # `jobengine stack`: answered from here
        self.commands = stacks.CommandDesk(
            self.store, self.id, interval, self.executors, self.active, self.clock
        )
        engine.on_submit(self.wake.set)

    def free_capacity(self) -> int:
        with self.lock:
            return self.settings.concurrency - len(self.running)

    def least_claim(self) -> int:
        """The free capacity worth a claim: a quarter of the capacity while jobs wait (the last
        claim got all it asked for), any otherwise (decisions 0008, 0009)."""
        return self.batch if self.backlog else 1

    def claim(self) -> list[Job]:
        """Claim up to the free capacity and start what was claimed, in one statement (two
        guarded moves per job); return the started jobs."""
        free, types = self.free_capacity(), self._claimable_types()
        if free <= 0 or not types:
            return []
        now, queues = self.clock.now(), self.settings.queues
        started = self.store.jobs.claim(self.id, queues, free, now, types, start=True)
        self._note_claimed(started, free)
        return started

    def claim_for(self, leaving: list[int]) -> Claim | None:
        """The recorder's claim, made in the transaction that records the `leaving` jobs: the
        capacity free once they have left, when worth a claim. Holds the claiming lock until
        `claimed`, so that the loop does not claim the same capacity."""
        types = self._claimable_types()
        if self.stopping.is_set() or not types:
            return None
        self.claiming.acquire()
        with self.lock:
            free = self.settings.concurrency - len(self.running)
            free += sum(1 for job_id in leaving if job_id in self.running)
        if self.stopping.is_set() or free < self.least_claim():  # again, holding the lock
            self.claiming.release()
            return None
        return Claim(self.id, self.settings.queues, free, types)

    def claimed(self, claim: Claim, jobs: list[Job]) -> None:
        """Launch what the recorder claimed, before it logs and calls back the records whose
        places these take (their capacity was counted free by `claim_for`)."""
        try:
            self._note_claimed(jobs, claim.limit)
            for job in jobs:
                self.launch(job)
        finally:
            self.claiming.release()

    def _claimable_types(self) -> list[str]:
        """The types it may claim now: those it can run (others wait for a worker), none
        while it drains or is fenced."""
        return [] if self.draining or self.fenced else self.engine.registry.names()

    def _note_claimed(self, started: list[Job], asked: int) -> None:
        self.backlog = len(started) >= asked
        rows = [(job.id, job.type, job.attempt) for job in started]  # one line a move
        log_lines(log, rows, "claim job %s (%s) attempt %s", "start job %s (%s) attempt %s")

    def prepare(self, job: Job) -> Running:
        """Everything a started job needs to run: its type, context and log."""
        job_type = self.engine.registry.get(job.type)
        job_log = JobLog(job.id, job.attempt, self.logs.add, self.settings.log_cap, self.clock.now)
        report = self._progress_reporter(job, job_log)
        context = JobContext(job.id, job.attempt, job.type, job_logger(job.type), report)
        now = time.monotonic()
        deadline = now + job.timeout if job.timeout else None
        running = Running(job, job_type, context, job_log, now, deadline)
        with self.lock:
            self.running[job.id] = running
        return running

    def launch(self, job: Job) -> Running:
        """Hand a started job to its executor. One it runs already at that attempt (a database
        crash lost the claim, decision 0010, and it was claimed again) runs on, not twice."""
        with self.lock:
            running = self.running.get(job.id)
        if running is not None and running.job.attempt == job.attempt:
            log.warning("job %s was claimed again (its claim was lost); its run goes on", job.id)
            return running
        running = self.prepare(job)
        self.executors[running.job_type.isolation].start(running, self.finished)
        return running

    def _progress_reporter(self, job: Job, job_log: JobLog) -> Callable[[float, str | None], None]:
        last = [0.0]

        def report(fraction: float, message: str | None) -> None:
            job_log.write("INFO", f"progress {fraction:.0%}{': ' + message if message else ''}")
            if time.monotonic() - last[0] >= 1.0 or fraction >= 1.0:
                last[0] = time.monotonic()
                try:  # an outage costs this one value, not the job (its log has the line)
                    self.store.jobs.save_progress(job, fraction)
                except DatabaseUnavailable as error:
                    log.warning("job %s: progress not saved (%s)", job.id, error)

        return report

    def finished(self, running: Running, outcome: Outcome) -> None:
        context = running.context
        if outcome.stopped or context.stop_kind:
            outcome = self.ladder.explain(running, outcome)
        job, now = running.job, self.clock.now()
        moves = decide(job, outcome, context.stop_kind, self.id, now, running.job_type.idempotent)
        on_done = partial(self._recorded, running)
        self.recorder.add(Record(job, moves, on_done, running.started))

    def _recorded(self, running: Running, move: Move | None) -> None:
        job = running.job
        with self.lock:
            if self.running.get(job.id) is running:  # not a later run of it, launched since
                del self.running[job.id]
            if self.recorder.refill is None:  # no recorder thread: run_once may be waiting
                self.recorded.notify_all()
        if self.recorder.refill is None or self.draining:
            self.wake.set()  # capacity is free: claim now (a running worker's recorder does)

    def check_stops(self) -> None:
        """Read cancel requests when told of one (a notification) or when the cancel poll is
        due (SQLite has no notifications between processes)."""
        now = time.monotonic()
        if self.cancel_notice.is_set() or now >= self.next_cancel_poll:
            self.cancel_notice.clear()
            self.next_cancel_poll = now + self.cancel_poll - 0.005  # the next turn, not one later
            self.ladder.read_cancels(self.active(), self.id)

    def climb_ladder(self) -> None:
        """The ladder's own thread: timeouts and stop steps on time, whatever the database
        does, until the worker has finished."""
        while not self.recording_done.wait(STOP_CHECK_INTERVAL):
            active = self.active()
            try:
                self.fence(active)
                self.ladder.climb(active)
            except Exception:
                log.exception("the cancel ladder failed a step; carrying on")

    def fence(self, active: list[Running]) -> None:
        """Past dead_after without a beat the others take this worker's jobs: stop them here
        (so none runs on two hosts beyond the ladder's grace) and claim nothing until a beat
        gets through again."""
        self.fenced = self.heartbeat.fenced()
        if not self.fenced:
            return
        reason = (
            f"this worker lost the database for {self.heartbeat.silent_for():.0f} s; "
            "its jobs were released to other workers"
        )
        for running in active:
            if running.context.stop_kind is None:
                log.error("job %s: %s", running.job.id, reason)
                self.ladder.request_stop(running, StopKind.FENCED, reason)

    def _notified(self, payload: str) -> None:
        if payload in (CANCEL_NOTICE, ""):  # "" when the listener (re)connects: look at all
            self.cancel_notice.set()
        if payload in (stacks.COMMAND_NOTICE, ""):
            self.commands.notice.set()
        if payload in (CANCEL_NOTICE, stacks.COMMAND_NOTICE, "") or not self._claim_at_once():
            self.wake.set()

    def _claim_at_once(self) -> bool:
        """A submit's notice: claim in the listener's thread, a thread hand-off sooner than the
        loop would; False leaves it to the loop (nothing free, stopping, or the claim failed:
        the loop tries again and says why)."""
        if self.free_capacity() < self.least_claim():
            return False
        try:
            with self.claiming:
                if self.stopping.is_set():  # `run` may be returning: its engine may close
                    return False
                for job in self.claim():
                    self.launch(job)
        except Exception:
            return False
        return True

    def active(self) -> list[Running]:
        """The jobs this worker runs now."""
        with self.lock:
            return list(self.running.values())

    def run_once(self) -> int:
        """Claim what is due and run it in this thread, recording each outcome; return the count."""
        jobs = self.claim()
        for job in jobs:
            running = self.prepare(job)
            outcome = run_job(running.job_type, job.args, running.context, running.log)
            self.finished(running, outcome)
            self.recorder.flush()
            with self.recorded:
                self.recorded.wait_for(lambda: job.id not in self.running)  # noqa: B023
        return len(jobs)

    def drain(self) -> int:
        """run_once() until nothing is due; return how many jobs ran."""
        total = 0
        while count := self.run_once():
            total += count
        return total

    def stop(self) -> None:
        """Drain and stop; called a second time, stop waiting for running jobs."""
        if self.stopping.is_set():
            self.stop_waiting.set()
        self.stopping.set()
        self.wake.set()

    def run(self) -> str:
        """Work until stop(), then drain; returns 'stopped' or 'restart' (asked to restart)."""
        self.register()
        self.recorder.refill = self  # the jobs recorded make room: it claims their successors
        joblog.install()
        restore_signal = stacks.install_dump_signal(
            lambda: stacks.dump_to_log(self.id, self.active, self.executors)
        )
        for name, target, args in (
            ("listener", self.store.database.listen, (CHANNEL, self._notified, self.stopping)),
            ("recorder", self.recorder.run, (self.recording_done,)),
            ("ladder", self.climb_ladder, ()),
        ):
            threading.Thread(target=target, args=args, daemon=True, name=name).start()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            self._loop()
            with self.claiming:
                pass  # a listener's claim under way ends; any later one sees `stopping`
            shut_down(self)
        finally:
            sys.setswitchinterval(switch_interval)
            self.recording_done.set()
            joblog.uninstall()
            restore_signal()
        return self.exit_reason

    def register(self) -> None:
        self.heartbeat.register()
        if not self.engine.registry.names():
            log.warning(
                "no job types are registered, so this worker can run no job; pass --app MODULE"
                " (or set JOBENGINE_APP) naming the module that registers them"
            )
        schedules = self.engine.schedules
        schedules.grace = max(schedules.grace, 2 * self.settings.schedule_interval)
        try:
            schedules.sync()
        except JobEngineError as error:  # the valid ones are written; the worker still runs
            log.error("some schedules defined in code were not written: %s", error)

    def _loop(self) -> None:
        """Claim when woken or once a poll interval; check stops more often while jobs run."""
        backoff, woken, next_claim = Backoff(), True, 0.0
        while not self.stopping.is_set():
            try:
                self.heartbeat_reap_and_tick()
                self.check_stops()
                self.commands.poll()
                due = time.monotonic() >= next_claim
                if due or (woken and self.free_capacity() >= self.least_claim()):
                    next_claim = time.monotonic() + self.settings.poll_interval
                    self._claim_and_launch()
                backoff.reset()
                pause = STOP_CHECK_INTERVAL if self.running else self.settings.poll_interval
                woken = self.wake.wait(min(pause, max(0.0, next_claim - time.monotonic())))
                self.wake.clear()
            except Exception as error:
                delay = backoff.next()
                if isinstance(error, DatabaseUnavailable):
                    self.heartbeat.steadiness.failed()  # its view of its peers is stale now
                    log.warning("database unavailable (%s); again in %.1f s", error, delay)
                else:
                    log.exception("unexpected error in the worker loop; carrying on")
                self.stopping.wait(delay)

    def _claim_and_launch(self) -> None:
        """Claim and launch, one claim at a time: after the recorder's, if one is under way (a
        job submitted since its claim read the queue is still claimed now)."""
        with self.claiming:
            for job in self.claim():
                self.launch(job)

    def heartbeat_reap_and_tick(self) -> None:
        """Heartbeat, reap dead peers and tick the schedules, each when it is due."""
        with self.claiming:  # no claim between the jobs held and the database's view of them
            with self.lock:
                held = set(self.running)
            beaten, request = self.heartbeat.beat(self.draining, held)
        if beaten:
            self._stop_jobs_given_to_others()
        if request:
            self.exit_reason = "restart" if request == "restart" else "stopped"
            self.stop()
        self.heartbeat.reap()
        now = self.clock.now()
        if now >= self.next_tick:
            interval = self.settings.schedule_interval
            self.next_tick = (now // interval + 1) * interval
            self.engine.schedules.tick(now)

    def _stop_jobs_given_to_others(self) -> None:
        """Jobs no longer its own (it was paused past dead-after and others recovered them, or
        a database crash lost their claim): it stops them (their outcomes would be refused)."""
        active = [running for running in self.active() if running.context.running]
        if not active:
            return
        owned = {job.id for job in self.store.jobs.owned(self.id, sorted(ACTIVE))}
        message = "job %s is no longer worker %s's (recovered, or its claim lost); stopping it"
        reason = "the job is no longer this worker's: recovered by others, or its claim lost"
        for running in active:
            if running.job.id not in owned:
                log.warning(message, running.job.id, self.id)
                self.ladder.request_stop(running, StopKind.RECOVERED, reason)
