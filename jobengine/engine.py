"""The composition root and the producer API: register, submit, get, list, cancel, rerun."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from jobengine import limits, submission
from jobengine.clock import Clock, DatabaseClock
from jobengine.errors import (
    ConfigurationError,
    IllegalMove,
    JobEngineError,
    JobNotFound,
    MoveConflict,
)
from jobengine.interrupts import shielded
from jobengine.model import Event, Job, LogLine, Move, NewJob, Status
from jobengine.registry import JobFunction, JobType, Registry
from jobengine.scheduler import Scheduler
from jobengine.store import DEFAULT_URL, Store, Transaction
from jobengine.store.jobs import CANCEL_NOTICE, CHANNEL
from jobengine.store.schedules import encode

if TYPE_CHECKING:  # the diagnosis modules read the engine; imported when asked for
    from jobengine.doctor import Report
    from jobengine.why import JobUrl, Verdict

F = TypeVar("F", bound=JobFunction)
Jobs = list[Job]
Events = list[Event]
LogLines = list[LogLine]
URL_VARIABLE = "JOBENGINE_DATABASE_URL"
JOB_OPTIONS = frozenset(f.name for f in fields(JobType) if f.init) - {"name", "function"}


class Engine:
    """One application's view of one job database."""

    def __init__(
        self, url: str | None = None, *, clock: Clock | None = None, pool_size: int = 10
    ) -> None:
        self.url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
        self.clock: Clock = clock or DatabaseClock(lambda: self.store.database.clock_offset())
        self.registry = Registry()
        self.pool_size = limits.whole("pool_size", pool_size, 1, 1000)
        self._store: Store | None = None
        self.creates_database = True
        """False: a database that does not exist yet is refused, not created (the CLI's
        commands that only read or steer existing jobs set it)."""
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.schedules = Scheduler(
            lambda: self.store, self.registry, self.clock, self.insert, self.cancel
        )
        """The recurring schedules: define, add, edit, pause, resume, remove, run now, tick."""

    # -- set-up ---------------------------------------------------------------------------------

    def configure(self, url: str) -> None:
        """Point the engine at another database (before its first use)."""
        if self._store is not None:
            raise ConfigurationError("configure() must be called before the engine is used")
        self.url = url

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store.open(
                    self.url, pool_size=self.pool_size, create=self.creates_database
                )
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @overload
    def job(self, function: F, **options: Any) -> F: ...
    @overload
    def job(self, function: str | None = None, **options: Any) -> Callable[[F], F]: ...

    def job(self, function: F | str | None = None, **options: Any) -> F | Callable[[F], F]:
        """Register a job type: `@engine.job`, `@engine.job("name")` or
        `@engine.job(name=..., queue=..., timeout=...)`."""
        if isinstance(function, str):
            if "name" in options:
                raise ConfigurationError("@engine.job got two names; pass the name once")
            function, options = None, {**options, "name": function}
        unknown = sorted(set(options) - JOB_OPTIONS - {"name"})
        if unknown:
            raise ConfigurationError(
                f"unknown option {unknown[0]!r} for @engine.job; "
                f"use name, {', '.join(sorted(JOB_OPTIONS))}"
            )

        def register(target: F) -> F:
            if not callable(target):
                raise ConfigurationError(
                    f"@engine.job registers a function, not a {type(target).__name__}; "
                    "put it above a def, or pass the function"
                )
            name = options.get("name") or getattr(target, "__name__", None)
            if name is None or name == "<lambda>":
                raise ConfigurationError(
                    f"{target!r} has no name of its own to name its job type; pass name=..."
                )
            settings = {key: value for key, value in options.items() if key != "name"}
            self.registry.add(JobType(name=name, function=target, **settings))
            return target

        return register(function) if function is not None else register

    def recurring(self, expression: str | None = None, **options: Any) -> Callable[[F], F]:
        """Register a function as a job type (if it is not one yet) fired on a schedule.

        `@engine.recurring("*/5 * * * *", tz="Europe/Berlin")` or `@engine.recurring(every=...)`.
        """
        if callable(expression):
            raise ConfigurationError(
                "@engine.recurring needs its timing: @engine.recurring('*/5 * * * *') or "
                "@engine.recurring(every=...)"
            )

        def register(target: F) -> F:
            added = target.__name__ not in self.registry
            if added:
                self.job(target)
            name = options.pop("name", None) or target.__name__
            try:
                self.schedules.define(name, target.__name__, expression, **options)
            except JobEngineError:
                if added:  # a refused schedule leaves nothing behind
                    self.registry.remove(target.__name__)
                raise
            return target

        return register

    def schedule(self, name: str, type: str, expression: str | None = None, **options: Any) -> None:
        """Define a schedule in code; it is written to the database when a worker starts."""
        self.schedules.define(name, type, expression, **options)

    def on_submit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each submit or cancel from this process (wakes its workers)."""
        self._listeners.append(listener)

    def wake_workers(self) -> None:
        """Wake this process's workers now (other processes learn by NOTIFY or their poll).

        Shielded: a job calls this (through submit and cancel), and a cancel landing inside
        Event.set, after its lock is taken and before the `with` holds it, keeps the lock
        taken for good; the next wake-up of the worker then waits forever.
        """
        listeners = list(self._listeners)
        if not listeners:
            return  # a process that only submits: no worker of its own to wake
        with shielded():
            for listener in listeners:
                listener()

    # -- producing ------------------------------------------------------------------------------

    def submit(
        self,
        type: str,
        /,
        *,
        run_at: datetime | float | None = None,
        delay: timedelta | float | None = None,
        priority: int | None = None,
        queue: str | None = None,
        parent: int | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        connection: Any = None,
        arguments: dict[str, Any] | None = None,
        actor: str = "api",
        **kwargs: Any,
    ) -> int:
        """Validate and insert a PENDING job; return its id. Nothing is written on bad input."""
        options = submission.Options(run_at, delay, priority, queue, parent, timeout, max_attempts)
        job_type = self.registry.get(type)
        if arguments is not None and not isinstance(arguments, dict):
            job_type.encode_arguments(arguments)  # raises, naming what it got instead of a dict
        values = {**(arguments or {}), **kwargs}
        new_job = submission.new_job(job_type, options, values, self.clock.now)
        return self._insert_new(new_job, limits.actor(actor), connection)

    def submit_many(
        self,
        type: str,
        arguments: Iterable[dict[str, Any]],
        /,
        *,
        run_at: datetime | float | None = None,
        delay: timedelta | float | None = None,
        priority: int | None = None,
        queue: str | None = None,
        parent: int | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        connection: Any = None,
        actor: str = "api",
    ) -> list[int]:
        """Validate and insert one PENDING job per arguments dict, in one transaction (the
        caller's with `connection`), with one wake-up; their ids in order. All or nothing."""
        options = submission.Options(run_at, delay, priority, queue, parent, timeout, max_attempts)
        job_type = self.registry.get(type)
        template = submission.new_job(job_type, options, None, self.clock.now)
        shared = vars(template)  # NewJob(...) per job: dataclasses.replace costs five times more
        encoded = submission.many_arguments(job_type, arguments)
        new_jobs = [NewJob(**{**shared, "args": text}) for text in encoded]
        if not new_jobs:
            return []
        ids = self.insert_many(new_jobs, limits.actor(actor), connection=connection)
        return [job_id for job_id in ids if job_id is not None]

    def insert(
        self,
        new_job: NewJob,
        actor: str,
        *,
        transaction: Transaction | None = None,
        connection: Any = None,
    ) -> int | None:
        """Insert one validated job (see insert_many); None if its (schedule, fire time) exists
        already."""
        return self.insert_many([new_job], actor, transaction=transaction, connection=connection)[0]

    def insert_many(
        self,
        new_jobs: Sequence[NewJob],
        actor: str,
        *,
        transaction: Transaction | None = None,
        connection: Any = None,
    ) -> list[int | None]:
        """The one way in for every job (submit, submit_many, rerun, schedules): insert
        validated jobs and wake workers once they commit.

        Inside `transaction` when given; inside the caller's own `connection` (whose commit is
        the caller's: its workers are woken at once); else in a transaction of its own.
        """
        for new_job in new_jobs:
            if new_job.timeout is not None and not 0 < new_job.timeout < math.inf:
                raise ConfigurationError("timeout must be a positive number of seconds (or None)")
        database = self.store.database
        if transaction is None and connection is None:
            if len(new_jobs) == 1 and new_jobs[0].parent is None:  # the common submit
                job_id = self.store.jobs.insert_alone(new_jobs[0], self.clock.now(), actor)
                if job_id is not None:
                    self.wake_workers()
                return [job_id]
            with database.transaction() as own:
                return self.insert_many(new_jobs, actor, transaction=own)
        target = transaction or database.foreign_transaction(connection)
        ids = self.store.jobs.insert_many(target, new_jobs, self.clock.now(), actor)
        target.after_commit(self.wake_workers)
        if transaction is None:  # the caller commits: no way to learn when
            target.run_committed_callbacks()
        return ids

    def _insert_new(self, new_job: NewJob, actor: str, connection: Any = None) -> int:
        job_id = self.insert(new_job, actor, connection=connection)
        if job_id is None:
            raise JobEngineError(
                f"schedule {new_job.schedule} already fired at {new_job.fire_time}"
            )
        return job_id

    # -- observing and steering -----------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        job = self.store.jobs.get(limits.whole("job id", job_id))
        if job is None:
            raise JobNotFound(f"no job has id {job_id}; list jobs with `jobengine jobs`")
        return job

    def list(
        self,
        status: Status | str | Sequence[Status | str] | None = None,
        type: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> Jobs:
        """Jobs newest first; pass the last id of a page as `after` to get the next page."""
        given = [status] if isinstance(status, str) else list(status or [])
        statuses = [parse_status(value) for value in given]  # bad input before the database
        if limits.whole("limit", limit) < 0:
            raise ConfigurationError(f"limit must be 0 or more, not {limit}")
        for name, value in (("type", type), ("queue", queue)):
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{name} must be text, not {value!r}")
        after = None if after is None else limits.whole("after", after)
        return self.store.jobs.find(statuses, type, queue, limit, after)

    def events(self, job_id: int) -> Events:
        self.get(job_id)
        return self.store.jobs.events(job_id)

    def log(self, job_id: int, after: int = 0) -> LogLines:
        """The job's log lines after line `after`; JobNotFound if there is no such job."""
        lines = self.store.logs.read(
            limits.whole("job id", job_id), after=limits.whole("after", after)
        )
        if not lines:
            self.get(job_id)  # raises JobNotFound: no lines is not the same as no job
        return lines

    def cancel(self, job_id: int, actor: str = "api", reason: str | None = None) -> Status:
        """Cancel a job: PENDING or QUEUED end CANCELED at once, RUNNING moves to TO_CANCEL."""
        limits.actor(actor)
        for _ in range(10):
            job = self.get(job_id)
            if job.status is Status.TO_CANCEL:
                return job.status
            if job.status.terminal:
                raise IllegalMove(
                    f"job {job_id} already ended {job.status}; nothing to cancel"
                    " (use `jobengine rerun` to run it again)"
                )
            now = self.clock.now()
            target = Status.TO_CANCEL if job.status is Status.RUNNING else Status.CANCELED
            changes: dict[str, Any] = {"cancel_requested_at": now}
            if target is Status.CANCELED:
                changes["finished_at"] = now
            move = Move(
                job.id,
                job.attempt,
                job.status,
                target,
                "cancel",
                actor,
                reason or "cancel requested",
                changes,
            )
            try:
                self.store.jobs.move(move, now)
            except MoveConflict:
                continue
            self.store.database.notify(CHANNEL, CANCEL_NOTICE)
            self.wake_workers()
            return target
        raise MoveConflict(f"job {job_id} kept changing while it was being cancelled; try again")

    def run_now(self, job_id: int, actor: str = "api") -> bool:
        """Make a PENDING job that is due later (scheduled, or waiting out a retry, or whose
        run_at holds no time) due now; False if it was due already."""
        job = self.get(job_id)
        if job.status is not Status.PENDING:
            raise IllegalMove(
                f"job {job_id} is {job.status}; only a PENDING job waits for its time"
            )
        changed = self.store.jobs.run_now(job, actor, self.clock.now())
        if changed:
            self.wake_workers()
        return changed

    def rerun(self, job_id: int, actor: str = "api") -> int:
        """Run an ended job again as a new job that points at the old one."""
        old = self.get(job_id)
        if not old.status.terminal:
            raise JobEngineError(f"job {job_id} is {old.status}; only ended jobs can be rerun")
        job_type = self.registry.get(old.type) if old.type in self.registry else None
        args = job_type.encode_arguments(old.args) if job_type else encode(old.args)
        new_job = NewJob(
            old.type,
            args,
            old.queue,
            old.priority,
            self.clock.now(),
            old.max_attempts,
            old.timeout,
            old.parent,
            rerun_of=old.id,
        )
        return self._insert_new(new_job, actor)

    # -- diagnosis (jobengine/why.py, jobengine/doctor.py) ----------------------------------------

    def why(
        self, job_id: int, dead_after: float | None = None, job_url: JobUrl | None = None
    ) -> Verdict:
        """Why the job is where it is: a `why.Verdict` (code, sentence, evidence)."""
        from jobengine import why

        job = self.get(job_id)
        return why.explain(self.store, job, self.clock.now(), dead_after or why.DEAD_AFTER, job_url)

    def doctor(self, dead_after: float | None = None, job_url: JobUrl | None = None) -> Report:
        """The health checks (a `doctor.Report`: OK / WARN / FAIL, each with its fix)."""
        from jobengine import doctor

        return doctor.examine(self, doctor.Options(dead_after or doctor.DEAD_AFTER, job_url))


def parse_status(value: Status | str) -> Status:
    try:
        return Status(str(value).upper())
    except ValueError:
        raise ConfigurationError(
            f"unknown status {value!r}; use one of {', '.join(s.value for s in Status)}"
        ) from None
