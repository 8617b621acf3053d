"""The doctor's vocabulary (a check, its options, what every check reads) and its checks of the
workers, queues, jobs, schedules, clocks and the file system."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from jobengine.errors import shown
from jobengine.model import Job, Status
from jobengine.settings import Settings
from jobengine.store import Store, WorkerRecord
from jobengine.store.diagnosis import DiagnosisQueries, DueGroup
from jobengine.store.listing import JobQueries
from jobengine.store.workers import DEAD, DRAINING, LIVE, RUNNING, WorkerOverview
from jobengine.why import DEAD_AFTER, JobUrl, worker_ids
from jobengine.wording import ago, duration, plural, worker_label

if TYPE_CHECKING:
    from jobengine.engine import Engine

OK, WARN, FAIL = "OK", "WARN", "FAIL"
WAIT_WARNING = 60.0  # seconds a due job may wait before the doctor mentions it
SKEW_WARNING = 2.0  # seconds between a host's clock and the database's
RECENT_DEATH = 3600.0  # a worker declared dead within this long is still worth a look
SCHEDULE_GRACE = 120.0  # a due fire time not fired within this long: no worker is ticking
MOST_LISTED = 10  # jobs or workers named in one check's message
CLAIM_PAGES = 100  # pages of the claim index a claim may read (a clean one reads 1-3)
VACUUM_FIX = (
    "run `VACUUM (ANALYZE) jobs, job_events` now; then keep autovacuum on (autovacuum = on in"
    " postgresql.conf, and `ALTER TABLE jobs RESET (autovacuum_enabled)`) or run that VACUUM"
    " every few minutes from cron"
)
MOUNTS = "/proc/mounts"
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p", "afs"}
    | {"ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "fuse.s3fs", "davfs"}
    | {"fuse.rclone", "fuse.gcsfuse", "fuse.juicefs", "ncpfs", "coda"}
)
DEATH_FIX = (
    "read the dead worker's own log (its --log-file, in the support bundle) for why it stopped;"
    " its jobs are recovered by the reaper of any live worker"
)


@dataclass(frozen=True)
class Check:
    """One health check: its name, OK / WARN / FAIL, what was found and how to fix it."""

    name: str
    level: str
    message: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Options:
    dead_after: float = DEAD_AFTER
    job_url: JobUrl | None = None
    kill_grace: float = Settings().kill_grace
    mounts: str = MOUNTS
    claim_pages: int = CLAIM_PAGES


@dataclass
class Look:
    """What every check reads once: the store, now, the workers."""

    engine: Engine
    store: Store
    options: Options
    now: float
    workers: list[WorkerOverview]

    @property
    def live(self) -> list[WorkerOverview]:
        return [worker for worker in self.workers if worker.state in ("alive", DRAINING)]

    @functools.cached_property
    def due(self) -> list[DueGroup]:
        """Due PENDING jobs by queue and type (read once for every check)."""
        return DiagnosisQueries(self.store.database).due_groups(self.now)

    def claiming(self, queue: str) -> list[WorkerOverview]:
        """Live workers that claim from `queue` (a draining worker claims nothing)."""
        return [
            worker
            for worker in self.live
            if worker.record.state == RUNNING
            and (not worker.record.queues or queue in worker.record.queues)
        ]

    def job(self, job: Job | int) -> str:
        """'job 12' with its page URL beside it when one is configured."""
        job_id = job if isinstance(job, int) else job.id
        url = self.options.job_url(job_id) if self.options.job_url else None
        return f"job {job_id} ({url})" if url else f"job {job_id}"


def workers(look: Look) -> Check:
    alive = [w for w in look.workers if w.state == "alive"]
    draining = [w for w in look.workers if w.state == DRAINING]
    silent = [w for w in look.workers if w.state == DEAD and w.record.state in LIVE]
    recent = [w for w in look.workers if w.state == DEAD and _died_recently(w.record, look.now)]
    counts = f"{len(alive)} alive, {len(draining)} draining, {len(silent) + len(recent)} dead"
    details = {
        "alive": worker_ids(alive),
        "draining": worker_ids(draining),
        "dead": worker_ids(silent + recent),
    }
    if not alive and not draining:
        message = f"no live worker ({counts}): no job runs and no schedule fires"
        fix = "start one with `jobengine worker` (or `jobengine run` for several)"
        return Check("workers", FAIL, message, fix, details)
    if silent or recent:
        message = f"{counts}: {_deaths(silent, recent, look)}"
        return Check("workers", WARN, message, DEATH_FIX, details)
    return Check("workers", OK, counts, details=details)


def _died_recently(record: WorkerRecord, now: float) -> bool:
    return record.state == DEAD and (record.stopped_at or 0.0) >= now - RECENT_DEATH


def _deaths(silent: list[WorkerOverview], recent: list[WorkerOverview], look: Look) -> str:
    now = look.now
    parts = [
        f"worker {worker_label(w.record.id)} stopped heartbeating {ago(w.record.heartbeat, now)}"
        " and is not declared dead yet"
        for w in silent[:MOST_LISTED]
    ]
    parts += [
        f"worker {worker_label(w.record.id)} was declared dead {ago(w.record.stopped_at or 0, now)}"
        for w in recent[:MOST_LISTED]
    ]
    return "; ".join(parts)


def queues(look: Look) -> Check:
    due: dict[str, int] = {}
    for group in look.due:
        due[group.queue] = due.get(group.queue, 0) + group.count
    unserved = {queue: count for queue, count in due.items() if not look.claiming(queue)}
    if not unserved:
        message = "every queue with due jobs has a live worker" if due else "no job is due"
        return Check("queues", OK, message)
    names = ", ".join(
        f"`{queue}` ({plural(count, 'due job')})" for queue, count in unserved.items()
    )
    fix = f"start a worker for them, e.g. `jobengine worker --queues {next(iter(unserved))}`"
    fix += " (no --queues: all)"
    return Check("queues", FAIL, f"no live worker serves {names}", fix, {"unserved": unserved})


def job_types(look: Look) -> Check:
    waiting = {group.type for group in look.due}
    scheduled = {schedule.type for schedule in look.store.schedules.all() if schedule.enabled}
    served = {name for worker in look.live for name in worker.record.types}
    missing = sorted((waiting | scheduled) - served)
    if not missing:
        return Check("job types", OK, "every waiting or scheduled job type has a live worker")
    message = f"no live worker has registered {', '.join(f'`{name}`' for name in missing)}"
    message += " (jobs or schedules of these types wait for ever)"
    fix = "start a worker whose --app registers them, or cancel those jobs"
    return Check("job types", WARN, message, fix, {"types": missing})


def waiting(look: Look) -> Check:
    oldest = JobQueries(look.store.database).oldest_due(look.now)
    if oldest is None:
        return Check("waiting", OK, "no job is waiting past its time")
    waited = max(0.0, look.now - oldest.run_at)
    message = f"the oldest due job, {look.job(oldest)} ({oldest.type}, queue `{oldest.queue}`),"
    message += f" has waited {duration(waited)}"
    details = {"job_id": oldest.id, "waited_seconds": round(waited, 3)}
    if waited < WAIT_WARNING:
        return Check("waiting", OK, message, details=details)
    return Check("waiting", WARN, message, f"`jobengine why {oldest.id}` says why", details)


def times(look: Look) -> Check:
    found = DiagnosisQueries(look.store.database).never_due()
    if not found:
        return Check("job times", OK, "every PENDING job's run_at is a time")
    first = found[0][0]
    listed = ", ".join(f"{look.job(job_id)} ({shown(value)})" for job_id, value in found)
    many = len(found) > 1
    message = (
        f"{'these PENDING jobs have' if many else 'a PENDING job has'} a run_at that is not a"
        f" time (seconds since the epoch), so no worker finds {'them' if many else 'it'} due:"
        f" {listed}"
    )
    fix = f"`jobengine run-now {first}` makes it due now (or `jobengine cancel {first}`)"
    return Check("job times", FAIL, message, fix, {"job_ids": [job_id for job_id, _ in found]})


def stuck(look: Look) -> Check:
    queries = DiagnosisQueries(look.store.database)
    owners: dict[str, WorkerRecord | None] = {}
    found: list[tuple[Job, str]] = []
    options = look.options
    for job in queries.stuck_candidates(look.now, options.dead_after, options.kill_grace):
        if job.worker is not None and job.worker not in owners:
            owners[job.worker] = queries.worker(job.worker)
        problem = _stuck_because(look, job, owners.get(job.worker or ""))
        if problem:
            found.append((job, problem))
    if not found:
        return Check("stuck jobs", OK, "no job is stuck")
    listed = "; ".join(f"{look.job(job)} {problem}" for job, problem in found[:MOST_LISTED])
    more = f" and {len(found) - MOST_LISTED} more" if len(found) > MOST_LISTED else ""
    fix = (
        "`jobengine why ID` for each; a dead owner's jobs are recovered by any live worker's"
        " reaper; a job that resists its stop is in a blocking call: `jobengine stack ID`"
    )
    message = f"{plural(len(found), 'stuck job')}: {listed}{more}"
    return Check("stuck jobs", WARN, message, fix, {"jobs": [job.id for job, _ in found]})


def _stuck_because(look: Look, job: Job, owner: WorkerRecord | None) -> str | None:
    now, dead_after, grace = look.now, look.options.dead_after, look.options.kill_grace
    if owner is None or owner.state not in LIVE or now - owner.heartbeat > dead_after:
        what = f"stopped heartbeating {ago(owner.heartbeat, now)}" if owner else "is not registered"
        return f"({job.status}) belongs to worker {worker_label(job.worker or '?')}, which {what}"
    ran = now - (job.started_at or now)
    if job.status is Status.RUNNING and job.timeout and ran > job.timeout + grace:
        return f"(RUNNING) has run {duration(ran)}, past its timeout of {duration(job.timeout)}"
    asked = job.cancel_requested_at
    if job.status is Status.TO_CANCEL and asked is not None and now - asked > grace:
        return f"(TO_CANCEL) was asked to stop {ago(asked, now)}, longer than the kill grace"
    return None


def schedules(look: Look) -> Check:
    late = [
        schedule
        for schedule in look.store.schedules.all()
        if schedule.enabled
        and schedule.next_fire_time is not None
        and schedule.next_fire_time < look.now - SCHEDULE_GRACE
    ]
    broken = look.store.schedules.unreadable()
    if not late and not broken:
        return Check("schedules", OK, "no schedule is overdue")
    parts = [f"{s.name} was due {ago(s.next_fire_time or 0, look.now)}" for s in late]
    parts += [f"{name} cannot be read ({problem})" for name, problem in broken.items()]
    fix = (
        "start a worker (every worker fires the schedules); remove unreadable rows with"
        " `jobengine schedules remove NAME`"
    )
    details = {"overdue": [s.name for s in late], "unreadable": sorted(broken)}
    message = f"overdue (no worker is ticking them): {'; '.join(parts)}"
    return Check("schedules", WARN, message, fix, details)


def clocks(look: Look) -> Check:
    skews = {"this host": time.time() - look.engine.clock.now()}
    skews |= {
        worker_label(w.record.id): w.record.clock_skew
        for w in look.live
        if w.record.clock_skew is not None
    }
    off = {name: skew for name, skew in skews.items() if abs(skew) > SKEW_WARNING}
    details = {"skew_seconds": {name: round(skew, 3) for name, skew in skews.items()}}
    if not off:
        largest = _signed(max(skews.values(), key=abs))
        message = f"every clock is within {SKEW_WARNING:g} s of the database's"
        return Check(
            "clocks", OK, f"{message} (the largest difference: {largest})", details=details
        )
    named = "; ".join(f"{name} is {_signed(skew)}" for name, skew in off.items())
    fix = (
        "run time synchronisation (chrony, systemd-timesyncd) on those hosts; the engine judges"
        " by the database's clock, but log times and local-time schedules read the host's"
    )
    return Check("clocks", WARN, f"clocks differ from the database's: {named}", fix, details)


def _signed(skew: float) -> str:
    return f"{abs(skew):.1f} s {'ahead' if skew >= 0 else 'behind'}"


def claim_index(look: Look) -> Check:
    """A claim slowed by the dead entries of claimed jobs, which only a vacuum removes."""
    database = look.store.database
    pages = DiagnosisQueries(database).claim_pages(look.now)
    if pages is None:
        return Check("claim index", OK, "SQLite removes a claimed job's index entry at once")
    vacuum = database.vacuum_state("jobs")
    details = {"pages": pages, "autovacuum": vacuum}
    message = (
        f"a claim reads {plural(pages, 'page')} of the claim index to find the next due job"
        f"; autovacuum is {vacuum}"
    )
    if pages <= look.options.claim_pages:
        return Check("claim index", OK, message, details=details)
    message += (
        f". More than {look.options.claim_pages} pages: the index keeps an entry for every job"
        " claimed since the last VACUUM, and each claim and poll reads past them"
    )
    return Check("claim index", WARN, message, VACUUM_FIX, details)


def file_system(look: Look) -> Check:
    path = look.store.database.path
    if path is None:
        return Check("file system", OK, "not SQLite: no database file to check")
    mount_point, kind = mount_of(path, look.options.mounts)
    message = f"the SQLite file {path} is on {kind} ({mount_point})"
    if kind not in NETWORK_FILE_SYSTEMS:
        return Check("file system", OK, message)
    message += (
        ", a network file system: its locks are not reliable there, so jobs can run twice and"
        " the file can be corrupted"
    )
    fix = "move the database to a local disk, or use PostgreSQL for workers on several hosts"
    return Check("file system", FAIL, message, fix, {"mount_point": mount_point, "type": kind})


def mount_of(path: str, mounts: str = MOUNTS) -> tuple[str, str]:
    """(mount point, file system type) of the mount that holds `path`, from a mounts table."""
    real = os.path.realpath(path)
    best = ("/", "unknown")
    try:
        with open(mounts, encoding="utf-8", errors="replace") as table:
            for line in table:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[0]):
                    best = (point, fields[2])
    except OSError:
        return best
    return best


CHECKS: list[tuple[str, Callable[[Look], Check]]] = [
    ("workers", workers),
    ("queues", queues),
    ("waiting", waiting),
    ("job times", times),
    ("stuck jobs", stuck),
    ("schedules", schedules),
    ("job types", job_types),
    ("clocks", clocks),
    ("claim index", claim_index),
    ("file system", file_system),
]
