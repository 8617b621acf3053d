"""Why a job is where it is: one verdict (a code, a sentence, the evidence) for any job.

`Engine.why` returns it; the CLI, the dashboard and the HTTP API all show this one verdict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jobengine.clock import utc_text
from jobengine.errors import shown
from jobengine.model import ACTIVE, Event, Job, Status
from jobengine.representation import timestamp
from jobengine.settings import Settings
from jobengine.store import Store, WorkerRecord
from jobengine.store.diagnosis import DiagnosisQueries
from jobengine.store.workers import DRAINING, LIVE, RUNNING, WorkerOverview
from jobengine.wording import actor_label, ago, duration, plural, worker_label

HUNG_AFTER = 600.0  # seconds without a log line (progress writes one) before a job looks hung
DEAD_AFTER = Settings().dead_after
KILL_GRACE = Settings().kill_grace
JobUrl = Callable[[int], str | None]
STEP = re.compile(r"step (\d): (.+)$")
RECOVERY_VERBS = frozenset({"retry", "release", "reap", "cancel"})
# A job taken from its worker goes back to PENDING or ends FAILURE; one being canceled ends
# CANCELED (no person moves a job from TO_CANCEL: only its worker or a reaper does).
RECOVERED_TO = frozenset({Status.PENDING, Status.FAILURE})
CANCEL_ENDED = (Status.TO_CANCEL, Status.CANCELED)
CANCEL_REQUESTED = (Status.RUNNING, Status.TO_CANCEL)
Found = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    """Why a job is where it is: a stable code, one sentence, and the facts behind it."""

    code: str
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Facts:
    """What a verdict is drawn from: the job, its events, and the workers as the tables say."""

    job: Job
    events: list[Event]
    now: float
    dead_after: float
    store: Store
    queries: DiagnosisQueries

    @functools.cached_property
    def owner(self) -> WorkerRecord | None:
        return self.queries.worker(self.job.worker) if self.job.worker else None

    def alive(self, record: WorkerRecord | None) -> bool:
        return (
            record is not None
            and record.state in LIVE
            and self.now - record.heartbeat <= self.dead_after
        )

    @functools.cached_property
    def live_workers(self) -> list[WorkerOverview]:
        workers = self.store.workers.overview(self.now, self.dead_after)
        return [worker for worker in workers if self.alive(worker.record)]

    def attempt_events(self) -> list[Event]:
        return [event for event in self.events if event.attempt == self.job.attempt]

    def base(self, url: str | None) -> dict[str, Any]:
        job = self.job
        return {
            "job_id": job.id,
            "url": url,
            "status": job.status.value,
            "type": job.type,
            "queue": job.queue,
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "worker": job.worker,
            "now": timestamp(self.now),
        }


def explain(
    store: Store,
    job: Job,
    now: float,
    dead_after: float = DEAD_AFTER,
    job_url: JobUrl | None = None,
) -> Verdict:
    """The verdict on `job` as the tables say it is at `now`."""
    queries = DiagnosisQueries(store.database)
    facts = Facts(job, store.jobs.events(job.id), now, dead_after, store, queries)
    code, sentence, evidence = EXPLAINERS[job.status](facts)
    return Verdict(code, sentence, {**facts.base(job_url(job.id) if job_url else None), **evidence})


def _pending(facts: Facts) -> Found:
    job, now, events = facts.job, facts.now, facts.events
    unreadable = facts.queries.never_due(job_id=job.id)  # a row written by hand
    if unreadable:
        held = shown(unreadable[0][1])
        sentence = (
            f"never due: its run_at holds {held}, not a time (seconds since the epoch),"
            f" so no worker finds it due; `jobengine run-now {job.id}` makes it due now"
        )
        return "run_at_not_a_time", sentence, {"run_at": held}
    retry = events[-1] if events and events[-1].verb == "retry" else None
    if job.run_at > now:
        due = f"{utc_text(job.run_at)} ({ago(job.run_at, now)})"
        if retry is not None:
            cause = (retry.reason or "").split("; retry ")[0]
            sentence = f"waiting: retry {job.attempt} of {job.max_attempts} after backoff, due at"
            sentence += f" {due}" + (f"; {cause}" if cause else "")
            return "retry_backoff", sentence, {"run_at": timestamp(job.run_at), "retry": cause}
        return "scheduled", f"scheduled for {due}", {"run_at": timestamp(job.run_at)}
    code, sentence, evidence = _due(facts)
    if retry is not None:
        sentence += f" (retry {job.attempt} of {job.max_attempts}, due since the backoff ended)"
    waited = round(now - job.run_at, 3)
    return code, sentence, {"run_at": timestamp(job.run_at), "due_seconds": waited, **evidence}


def _due(facts: Facts) -> Found:
    job = facts.job
    serving = [w for w in facts.live_workers if not w.record.queues or job.queue in w.record.queues]
    claiming = [w for w in serving if w.record.state == RUNNING]
    if not claiming:
        return _unserved(facts, serving)
    typed = [w for w in claiming if job.type in w.record.types]
    if not typed:
        names = sorted({name for w in claiming for name in w.record.types})
        sentence = (
            f"waiting: no live worker serving queue `{job.queue}` has job type `{job.type}`"
            f" registered (the types of the {plural(len(claiming), 'worker')} serving it:"
            f" {', '.join(names) or 'none'}); start a worker whose app registers `{job.type}`"
        )
        return "no_worker_for_type", sentence, {"serving_workers": worker_ids(claiming)}
    busy, capacity = sum(w.running_jobs for w in typed), sum(w.record.concurrency for w in typed)
    ahead = facts.queries.jobs_ahead(job, facts.now)
    load: dict[str, Any] = {"busy": busy, "capacity": capacity, "jobs_ahead": ahead}
    load["serving_workers"] = worker_ids(typed)
    if busy >= capacity:
        who = f"all {len(typed)} live workers" if len(typed) > 1 else "the only live worker"
        sentence = (
            f"waiting: {who} serving `{job.queue}` {'are' if len(typed) > 1 else 'is'} busy"
            f" ({busy}/{capacity} threads); {plural(ahead, 'job')} ahead of it by priority"
        )
        return "workers_busy", sentence, load
    sentence = (
        f"due {ago(job.run_at, facts.now)}; {capacity - busy} of {capacity} threads are free on"
        f" {plural(len(typed), 'live worker')} serving `{job.queue}`, so it is claimed at their"
        f" next poll; {plural(ahead, 'job')} ahead of it by priority"
    )
    return "due", sentence, load


def _unserved(facts: Facts, serving: list[WorkerOverview]) -> Found:
    queue = facts.job.queue
    draining = [w for w in serving if w.record.state == DRAINING]
    if draining:
        sentence = (
            f"waiting: the only live workers serving queue `{queue}` are draining (stopping):"
            f" {', '.join(worker_label(w.record.id) for w in draining)}; start another worker"
        )
        return "workers_draining", sentence, {"draining_workers": worker_ids(draining)}
    sentence = (
        f"waiting: no live worker serves queue `{queue}`; start one with"
        f" `jobengine worker --queues {queue}` (or without --queues to serve every queue)"
    )
    return "no_worker", sentence, {"live_workers": worker_ids(facts.live_workers)}


def worker_ids(workers: Sequence[WorkerOverview]) -> list[str]:
    return [worker.record.id for worker in workers]


def _queued(facts: Facts) -> Found:
    job, owner = facts.job, facts.owner
    label = worker_label(job.worker or "?")
    evidence = {"queued_at": timestamp(job.queued_at), **_owner_evidence(facts, owner)}
    if facts.alive(owner):
        since = ago(job.queued_at, facts.now) if job.queued_at else "just now"
        return "claimed", f"claimed by worker {label} {since}, starting", evidence
    sentence = f"claimed by worker {label}, which {_silence(facts, owner)}; "
    sentence += _reaper(facts, "release it")
    return "claimed_by_dead_worker", sentence, evidence


def _running(facts: Facts) -> Found:
    job, owner, now = facts.job, facts.owner, facts.now
    started = job.started_at if job.started_at is not None else now
    evidence = {"started_at": timestamp(job.started_at), **_owner_evidence(facts, owner)}
    if not facts.alive(owner):
        sentence = f"running on worker {worker_label(job.worker or '?')}, which "
        sentence += _silence(facts, owner)
        return "running_on_dead_worker", f"{sentence}; {_reaper(facts, _lost_fate(job))}", evidence
    line = facts.queries.last_log_line(job.id, job.attempt)
    quiet = now - (line.at if line else started)
    parts = [
        f"running for {duration(now - started)} on {worker_label(owner.id) if owner else '?'}"
        f" (alive, heartbeat {ago(owner.heartbeat if owner else now, now)})",
        f"last log line {ago(line.at, now)}: {line.text[:200]!r}" if line else "no log line yet",
        f"timeout: {duration(job.timeout)}" if job.timeout else "timeout: none",
    ]
    evidence |= {"last_log_line": line.text if line else None, "quiet_seconds": round(quiet, 3)}
    evidence |= {"last_log_at": timestamp(line.at) if line else None, "timeout": job.timeout}
    code, hint = _running_hint(facts, now - started, quiet)
    stop = _last_step(facts.attempt_events(), Status.RUNNING, now)
    return code, "; ".join(parts + [text for text in (stop, hint) if text]), evidence


def _running_hint(facts: Facts, ran: float, quiet: float) -> tuple[str, str | None]:
    job = facts.job
    if job.timeout and ran > job.timeout + KILL_GRACE:
        return "running_past_timeout", (
            f"it is {duration(ran - job.timeout)} past its timeout and still running: its stop"
            f" has not taken (a blocking call?); see where it is with `jobengine stack {job.id}`"
        )
    if quiet >= HUNG_AFTER:
        return "running_looks_hung", (
            f"it looks hung: no log line and no progress for {duration(quiet)}; see where it is"
            f" with `jobengine stack {job.id}`"
        )
    return "running", None


def _to_cancel(facts: Facts) -> Found:
    job, owner, now = facts.job, facts.owner, facts.now
    requests = [e for e in facts.events if (e.from_status, e.to_status) == CANCEL_REQUESTED]
    request = requests[-1] if requests else None
    asked = job.cancel_requested_at or (request.at if request else now)
    sentence = f"cancel requested {ago(asked, now)}"
    sentence += f" by {actor_label(request.actor)}" if request else ""
    step = _last_step(facts.attempt_events(), Status.TO_CANCEL, now)
    evidence = {"cancel_requested_at": timestamp(asked), **_owner_evidence(facts, owner)}
    evidence["last_step"] = step
    if not facts.alive(owner):
        sentence += f"; its worker {worker_label(job.worker or '?')} {_silence(facts, owner)}"
        sentence += f"; {_reaper(facts, 'end it CANCELED')}"
        return "canceling_on_dead_worker", sentence, evidence
    sentence += f"; {step or 'its worker has not taken the first step of the ladder yet'}"
    if now - asked > KILL_GRACE:
        sentence += (
            f"; it has resisted for {duration(now - asked)} (a thread job in a blocking call cannot"
            f" be interrupted); see where it is with `jobengine stack {job.id}`"
        )
        return "cancel_resisted", sentence, evidence
    return "canceling", sentence, evidence


def _last_step(events: Sequence[Event], status: Status, now: float) -> str | None:
    """The newest ladder step (a note: from = to = `status`), as a phrase."""
    for event in reversed(events):
        found = STEP.search(event.reason or "")
        if event.from_status is status and event.to_status is status and found:
            kind = (event.reason or "").split(":", 1)[0]
            return (
                f"the {kind} ladder reached step {found.group(1)} ({found.group(2)})"
                f" {ago(event.at, now)}, at {utc_text(event.at)}"
            )
    return None


def _owner_evidence(facts: Facts, owner: WorkerRecord | None) -> dict[str, Any]:
    if owner is None:
        return {"worker_alive": False, "worker_registered": False}
    return {
        "worker_alive": facts.alive(owner),
        "worker_registered": True,
        "worker_state": owner.state,
        "worker_heartbeat_at": timestamp(owner.heartbeat),
        "worker_silent_seconds": round(facts.now - owner.heartbeat, 3),
    }


def _silence(facts: Facts, owner: WorkerRecord | None) -> str:
    """What became of a worker that is not alive: 'stopped heartbeating 45 s ago'."""
    if owner is None:
        return "is not registered (no row in the workers table)"
    if owner.state not in LIVE:
        return f"is {owner.state} since {utc_text(owner.stopped_at)}"
    return f"stopped heartbeating {ago(owner.heartbeat, facts.now)}"


def _lost_fate(job: Job) -> str:
    if job.attempt < job.max_attempts:
        return f"retry it (attempt {job.attempt} of {job.max_attempts})"
    return "retry it if its type is idempotent, else fail it (no attempts left)"


def _reaper(facts: Facts, action: str) -> str:
    if facts.live_workers:
        return f"the reaper will {action}"
    return f"no live worker is running to reap it: start one and its reaper will {action}"


def _ended(facts: Facts) -> Found:
    job, now = facts.job, facts.now
    final = next((e for e in reversed(facts.events) if e.to_status is job.status), None)
    lost = recoveries(facts.events)
    when = job.finished_at if job.finished_at is not None else (final.at if final else now)
    sentence = f"{job.status.value} {ago(when, now)} ({utc_text(when)}), attempt {job.attempt}"
    sentence += f" of {job.max_attempts}"
    if job.started_at is None:
        sentence += ", before it ran"
    elif job.finished_at is not None:
        sentence += f", ran {duration(job.finished_at - job.started_at)}"
    if final is not None:
        sentence += f"; ended by {actor_label(final.actor)} ({final.verb})"
        sentence += f": {final.reason}" if final.reason else ""
    code = f"ended_{job.status.value.lower()}"
    if final is not None and final in lost:
        code = "failed_worker_died" if job.status is Status.FAILURE else "canceled_worker_died"
    elif lost:
        sentence += f"; recovered after its worker died ({lost[0].reason})"
    evidence: dict[str, Any] = {"finished_at": timestamp(when)}
    evidence["ended_by"] = final.actor if final else None
    evidence |= {"reason": final.reason if final else None, "errors": job.errors}
    evidence["recoveries"] = [{"attempt": e.attempt, "reason": e.reason} for e in lost]
    return code, sentence, evidence


def recoveries(events: Sequence[Event]) -> list[Event]:
    """Moves that took the job from a worker that no longer held it: made by another actor
    (a reaper, a supervisor) than the worker that claimed that attempt."""
    claimers = {e.attempt: e.actor for e in events if e.verb == "claim"}
    return [
        e
        for e in events
        if e.verb in RECOVERY_VERBS
        and e.from_status in ACTIVE
        and (e.to_status in RECOVERED_TO or (e.from_status, e.to_status) == CANCEL_ENDED)
        and claimers.get(e.attempt) not in (None, e.actor)
    ]


EXPLAINERS: dict[Status, Callable[[Facts], Found]] = {
    Status.PENDING: _pending,
    Status.QUEUED: _queued,
    Status.RUNNING: _running,
    Status.TO_CANCEL: _to_cancel,
    **{status: _ended for status in Status if status.terminal},
}
