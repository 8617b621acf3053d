"""The doctor's vocabulary (a check, its options, what every check reads) and its checks of
stuck jobs, schedules, clocks and the file system."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobengine.model import Job, Status
from jobengine.settings import Settings
from jobengine.store import Store, WorkerRecord
from jobengine.store.diagnosis import DiagnosisQueries, DueGroup
from jobengine.store.workers import DRAINING, LIVE, RUNNING, WorkerOverview
from jobengine.why import JobUrl
from jobengine.wording import ago, duration, plural, worker_label

if TYPE_CHECKING:
    from jobengine.engine import Engine

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DEAD_AFTER = Settings().dead_after
SLOW_ROUND_TRIP = 0.1  # seconds; a query slower than this slows every claim and move
WAIT_WARNING = 60.0  # seconds a due job may wait before the doctor mentions it
SKEW_WARNING = 2.0  # seconds between a host's clock and the database's
RECENT_DEATH = 3600.0  # a worker declared dead within this long is still worth a look
SCHEDULE_GRACE = 120.0  # a due fire time not fired within this long: no worker is ticking
MOST_LISTED = 10  # jobs or workers named in one check's message
MOUNTS = "/proc/mounts"
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p", "afs"}
    | {"ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "fuse.s3fs", "davfs"}
    | {"fuse.rclone", "fuse.gcsfuse", "fuse.juicefs", "ncpfs", "coda"}
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
        return {
            "name": self.name,
            "level": self.level,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
        }


@dataclass(frozen=True)
class Options:
    dead_after: float = DEAD_AFTER
    job_url: JobUrl | None = None
    kill_grace: float = Settings().kill_grace
    mounts: str = MOUNTS


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


# -- stuck jobs, schedules, clocks, the file system --------------------------------------------


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
    return Check(
        "stuck jobs",
        WARN,
        f"{plural(len(found), 'stuck job')}: {listed}{more}",
        "`jobengine why ID` for each; a dead owner's jobs are recovered by any live worker's"
        " reaper; a job that resists its stop is in a blocking call: `jobengine stack ID`",
        {"jobs": [job.id for job, _ in found]},
    )


def _stuck_because(look: Look, job: Job, owner: WorkerRecord | None) -> str | None:
    now, dead_after = look.now, look.options.dead_after
    if owner is None or owner.state not in LIVE or now - owner.heartbeat > dead_after:
        what = (
            "is not registered"
            if owner is None
            else f"stopped heartbeating {ago(owner.heartbeat, now)}"
        )
        return f"({job.status}) belongs to worker {worker_label(job.worker or '?')}, which {what}"
    ran = now - (job.started_at or now)
    if job.status is Status.RUNNING and job.timeout and ran > job.timeout + look.options.kill_grace:
        return f"(RUNNING) has run {duration(ran)}, past its timeout of {duration(job.timeout)}"
    asked = job.cancel_requested_at
    if (
        job.status is Status.TO_CANCEL
        and asked is not None
        and now - asked > look.options.kill_grace
    ):
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
    return Check(
        "schedules",
        WARN,
        f"overdue (no worker is ticking them): {'; '.join(parts)}",
        "start a worker (every worker fires the schedules); remove unreadable rows with"
        " `jobengine schedules remove NAME`",
        {"overdue": [s.name for s in late], "unreadable": sorted(broken)},
    )


def clocks(look: Look) -> Check:
    host = time.time() - look.engine.clock.now()
    skews = {"this host": host}
    skews |= {
        worker_label(w.record.id): w.record.clock_skew
        for w in look.live
        if w.record.clock_skew is not None
    }
    off = {name: skew for name, skew in skews.items() if abs(skew) > SKEW_WARNING}
    details = {"skew_seconds": {name: round(skew, 3) for name, skew in skews.items()}}
    largest = max(skews.values(), key=abs)
    if not off:
        return Check(
            "clocks",
            OK,
            f"every clock is within {SKEW_WARNING:g} s of the database's (the largest"
            f" difference: {_signed(largest)})",
            details=details,
        )
    named = "; ".join(f"{name} is {_signed(skew)}" for name, skew in off.items())
    return Check(
        "clocks",
        WARN,
        f"clocks differ from the database's: {named}",
        "run time synchronisation (chrony, systemd-timesyncd) on those hosts; the engine judges"
        " by the database's clock, but log times and local-time schedules read the host's",
        details,
    )


def _signed(skew: float) -> str:
    return f"{abs(skew):.1f} s {'ahead' if skew >= 0 else 'behind'}"


def file_system(look: Look) -> Check:
    path = look.store.database.path
    if path is None:
        return Check("file system", OK, "not SQLite: no database file to check")
    mount_point, kind = mount_of(path, look.options.mounts)
    message = f"the SQLite file {path} is on {kind} ({mount_point})"
    if kind not in NETWORK_FILE_SYSTEMS:
        return Check("file system", OK, message)
    return Check(
        "file system",
        FAIL,
        message + ", a network file system: its locks are not reliable there, so jobs can run"
        " twice and the file can be corrupted",
        "move the database to a local disk, or use PostgreSQL for workers on several hosts",
        {"mount_point": mount_point, "type": kind},
    )


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
