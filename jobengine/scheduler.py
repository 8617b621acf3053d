"""Recurring schedules: define them in code or at runtime, and fire each run exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from jobengine import limits
from jobengine.clock import Clock, utc_text
from jobengine.cron import SKIP, Plan, Recurrence
from jobengine.definitions import (
    CANCEL_PREVIOUS,
    CODE,
    DEFINITION,
    RUNTIME,
    TIMING,
    Definition,
    check_definition,
    options_of,
)
from jobengine.errors import (
    ConfigurationError,
    InvalidArguments,
    InvalidSchedule,
    JobEngineError,
    JobNotFound,
    UnknownJobType,
)
from jobengine.model import NewJob, Status
from jobengine.registry import Registry
from jobengine.store import Store, Transaction
from jobengine.store.schedules import Run, Schedule, encode

log = logging.getLogger("jobengine.scheduler")
# Names for the lists the Scheduler returns: inside the class, `list` is its method.
Schedules = list[Schedule]
Times = list[float]
Ids = list[int]
Runs = list[Run]
DEFAULT_GRACE = 120.0
ACTOR = "scheduler"
MOST_SHOWN = 10_000  # fire times one call may list


class Insert(Protocol):
    """The engine's one way in for a job; workers are woken once the transaction commits."""

    def __call__(
        self, new_job: NewJob, actor: str, *, transaction: Transaction | None = None
    ) -> int | None: ...


Cancel = Callable[..., Status]


def recurrence_of(schedule: Schedule) -> Recurrence:
    return Recurrence(schedule.expression, schedule.every, schedule.timezone)


class Scheduler:
    """The engine's schedules: the code's definitions, the runtime API and the tick."""

    def __init__(
        self,
        store: Callable[[], Store],
        registry: Registry,
        clock: Clock,
        insert: Insert,
        cancel: Cancel,
    ) -> None:
        self._store, self.registry, self.clock = store, registry, clock
        self.insert, self.cancel = insert, cancel
        self.grace = DEFAULT_GRACE
        self._definitions: dict[str, Definition] = {}

    def define(self, name: str, type: str, expression: str | None = None, **options: Any) -> None:
        """Keep a code definition (validated now) for `sync()`; a name defined again replaces."""
        self._settings(name, type, expression, options, check_type=type in self.registry)
        self._definitions[name] = Definition(type, expression, dict(options))

    def sync(self) -> None:
        """Write the code's schedules: create missing rows, update the definition of code rows.

        Never duplicates a row, never resumes a schedule an operator paused, never touches a
        schedule an operator took over (origin 'runtime'). Valid definitions are written
        even when others fail; the failures are raised together afterwards.
        """
        problems = []
        for name, definition in self._definitions.items():
            try:
                self._sync_one(name, definition)
            except (InvalidSchedule, UnknownJobType, InvalidArguments, ConfigurationError) as error:
                problems.append(f"{name}: {error}")
        if problems:
            raise InvalidSchedule("schedules defined in code not synced: " + "; ".join(problems))

    def _sync_one(self, name: str, definition: Definition) -> None:
        settings = self._settings(name, definition.type, definition.expression, definition.options)
        now = self.clock.now()
        store = self._store().schedules
        with self._store().database.transaction() as transaction:
            if store.insert(transaction, self._new(name, settings, CODE, now)):
                log.info("schedule %s: created from code", name)
                return
            row = store.read(transaction, name)
            if row is None or row.origin != CODE:
                return
            changes = {
                key: settings[key] for key in DEFINITION if getattr(row, key) != settings[key]
            }
            if not settings["enabled"] and row.enabled:
                changes["enabled"] = False
            if any(key in changes for key in TIMING):
                edited = replace(row, **changes)
                changes["next_fire_time"] = recurrence_of(edited).at_or_after(now)
            if changes:
                store.update(transaction, name, {**changes, "updated_at": now})
                log.info("schedule %s: updated from code (%s)", name, ", ".join(sorted(changes)))

    def add(self, name: str, type: str, expression: str | None = None, **options: Any) -> Schedule:
        """Create a schedule at runtime; nothing is written on bad input."""
        settings = self._settings(name, type, expression, options, check_type=True)
        now = self.clock.now()
        schedule = self._new(name, settings, RUNTIME, now)
        with self._store().database.transaction() as transaction:
            if not self._store().schedules.insert(transaction, schedule):
                raise InvalidSchedule(
                    f"a schedule named {name!r} exists already; change it with "
                    f"`jobengine schedules edit {name}` or choose another name"
                )
        return schedule

    def edit(self, name: str, **changes: Any) -> Schedule:
        """Change a schedule's definition; an edited code schedule becomes a runtime one.

        `changes` are add()'s options plus `expression` and `type`; a new expression replaces
        an interval and a new `every` replaces an expression.
        """
        if "enabled" in changes:
            raise InvalidSchedule("edit does not pause or resume; use pause() or resume()")
        current = self.get(name)
        options = options_of(current)
        expression = changes.pop("expression", None)
        if expression is not None:
            options.pop("every", None)
        elif changes.get("every") is None:
            expression = current.expression
        type = changes.pop("type", None) or current.type
        check = type != current.type or "arguments" in changes
        options.update({key: value for key, value in changes.items() if value is not None})
        settings = self._settings(name, type, expression, options, check_type=check)
        now = self.clock.now()
        update = {key: settings[key] for key in DEFINITION}
        update.update(origin=RUNTIME, updated_at=now)
        if any(update[key] != getattr(current, key) for key in TIMING):
            edited = replace(current, **update)
            update["next_fire_time"] = recurrence_of(edited).at_or_after(now)
        return self._update(name, update)

    def pause(self, name: str) -> Schedule:
        """Stop firing until resumed (an operator's pause survives every sync)."""
        current = self.get(name)
        if not current.enabled:
            return current
        return self._update(name, {"enabled": False, "updated_at": self.clock.now()})

    def resume(self, name: str) -> Schedule:
        """Enable again; runs that fell due while paused are not fired (they were not missed)."""
        current = self.get(name)
        if current.enabled:
            return current
        now = self.clock.now()
        next_fire_time = recurrence_of(current).at_or_after(now)
        return self._update(
            name, {"enabled": True, "updated_at": now, "next_fire_time": next_fire_time}
        )

    def remove(self, name: str) -> None:
        """Delete a schedule; its past runs stay. A code definition re-creates it on sync."""
        if not self._store().schedules.delete(name):
            raise _not_found(name)

    def run_now(self, name: str, actor: str = "api") -> int:
        """Insert one run at once, outside the timetable (and regardless of the overlap policy)."""
        schedule = self.get(name)
        now = self.clock.now()
        with self._store().database.transaction() as transaction:
            job_id = self.insert(self._job(schedule, None, now), actor, transaction=transaction)
        assert job_id is not None  # runs by hand have no fire time, so never conflict
        return job_id

    def get(self, name: str) -> Schedule:
        schedule = self._store().schedules.get(name)
        if schedule is None:
            raise _not_found(name)
        return schedule

    def list(self) -> Schedules:
        return self._store().schedules.all()

    def unreadable(self) -> dict[str, str]:
        """Schedules whose row cannot be read (never fired): name -> what is wrong."""
        return self._store().schedules.unreadable()

    def next_fire_times(self, name: str, count: int = 10) -> Times:
        """The next `count` fire times (from the pending one if a run is overdue)."""
        return self.upcoming(self.get(name), limits.whole("count", count, 0, MOST_SHOWN))

    def upcoming(self, schedule: Schedule, count: int) -> Times:
        start = self.clock.now()
        if schedule.enabled and schedule.next_fire_time is not None:
            start = min(start, schedule.next_fire_time)
        return recurrence_of(schedule).upcoming(start, count)

    def runs(self, name: str, limit: int = 10) -> Runs:
        self.get(name)
        return self._store().schedules.runs(name, limits.whole("limit", limit, 0))

    def last_runs(self) -> dict[str, Run]:
        return self._store().schedules.last_runs()

    def overdue(self, schedule: Schedule) -> bool:
        """True when an enabled schedule's run is later than the grace: no worker is ticking."""
        due = schedule.next_fire_time
        return schedule.enabled and due is not None and due < self.clock.now() - self.grace

    def tick(self, now: float) -> Ids:
        """Fire every due run; return the ids of the jobs this call inserted.

        Safe to call from any number of processes at once: each schedule is fired under its
        row lock, and the unique (schedule, fire time) of jobs makes a second insert a no-op.
        """
        inserted: Ids = []
        for schedule in self._store().schedules.due(now):
            try:
                inserted += self._fire(schedule, now)
            except InvalidSchedule as error:  # a row this version cannot read: fire the others
                log.error("schedule %s: not fired: %s", schedule.name, error)
        return inserted

    def _fire(self, seen: Schedule, now: float) -> Ids:
        assert seen.next_fire_time is not None
        plan = recurrence_of(seen).plan(
            seen.next_fire_time, now, self.grace, seen.missed, seen.missed_window
        )
        if seen.overlap == CANCEL_PREVIOUS and plan.fire:
            self._cancel_previous(seen.name, plan.fire[0])
        store = self._store().schedules
        with self._store().database.transaction() as transaction:
            current = store.read(transaction, seen.name, lock=True)
            if current != seen:
                return []  # another worker fired it (or holds it), or it was just edited
            fire = self._apply_overlap(transaction, current, plan.fire)
            ids = []
            for fire_time in fire:
                new_job = self._job(current, fire_time, fire_time)
                ids.append(self.insert(new_job, ACTOR, transaction=transaction))
            changes: dict[str, Any] = {"next_fire_time": plan.next_fire_time}
            if fire:
                changes["last_fire_time"] = fire[-1]
            store.update(transaction, seen.name, changes)
        self._report(seen, plan, fire, now)
        return [job_id for job_id in ids if job_id is not None]

    def _apply_overlap(self, transaction: Transaction, schedule: Schedule, fire: Times) -> Times:
        """Which of the due runs fire under the overlap policy."""
        if not fire or schedule.overlap not in (SKIP, CANCEL_PREVIOUS):
            return fire
        if schedule.overlap == CANCEL_PREVIOUS:
            return fire[-1:]  # each run would cancel the one before it: fire only the last
        store = self._store().schedules
        busy = store.unended_runs(transaction, schedule.name, before=fire[0])
        if busy:
            job = f"job {busy[-1].job_id} is still {busy[-1].status}"
            log.info("schedule %s: run of %s skipped, %s", schedule.name, utc_text(fire[0]), job)
            return []
        return fire[:1]  # later runs of this batch would overlap the first one

    def _cancel_previous(self, name: str, before: float) -> None:
        with self._store().database.transaction(write=False) as transaction:
            previous = self._store().schedules.unended_runs(transaction, name, before)
        reason = f"schedule {name}: the run of {utc_text(before)} replaces it"
        reason += " (overlap policy cancel_previous)"
        for run in previous:
            try:
                self.cancel(run.job_id, actor=ACTOR, reason=reason)
            except JobEngineError as error:  # it ended meanwhile: nothing to cancel
                log.info("schedule %s: job %s not cancelled: %s", name, run.job_id, error)

    def _report(self, schedule: Schedule, plan: Plan, fire: Times, now: float) -> None:
        if plan.late_from is None:
            return
        late = sum(1 for fire_time in fire if fire_time < now - self.grace)
        message = "schedule %s: runs due since %s were late (no worker ticked); %r fired %d"
        log.warning(message, schedule.name, utc_text(plan.late_from), schedule.missed, late)

    def _settings(
        self,
        name: str,
        type: str,
        expression: str | None,
        options: dict[str, Any],
        check_type: bool = True,
    ) -> dict[str, Any]:
        """Validate a definition (and its arguments against the job type, if `check_type`)."""
        settings = check_definition(name, type, expression, options)
        if check_type:
            self.registry.get(type).encode_arguments(settings["args"])
        return settings

    def _new(self, name: str, settings: dict[str, Any], origin: str, now: float) -> Schedule:
        recurrence = Recurrence(settings["expression"], settings["every"], settings["timezone"])
        return Schedule(
            name=name,
            origin=origin,
            last_fire_time=None,
            next_fire_time=recurrence.at_or_after(now),
            created_at=now,
            updated_at=now,
            **settings,
        )

    def _job(self, schedule: Schedule, fire_time: float | None, run_at: float) -> NewJob:
        """The job of one run, with the job type's defaults where the schedule sets none."""
        job_type = self.registry.get(schedule.type) if schedule.type in self.registry else None
        priority = schedule.priority
        if priority is None:
            priority = job_type.priority if job_type else 0
        return NewJob(
            type=schedule.type,
            args=encode(schedule.args),
            queue=schedule.queue or (job_type.queue if job_type else "default"),
            priority=priority,
            run_at=run_at,
            max_attempts=job_type.max_attempts if job_type else 1,
            timeout=job_type.timeout if job_type else None,
            schedule=schedule.name,
            fire_time=fire_time,
        )

    def _update(self, name: str, changes: dict[str, Any]) -> Schedule:
        with self._store().database.transaction() as transaction:
            if not self._store().schedules.update(transaction, name, changes):
                raise _not_found(name)
        return self.get(name)


def _not_found(name: str) -> JobNotFound:
    return JobNotFound(f"no schedule is named {name!r}; list them with `jobengine schedules list`")
