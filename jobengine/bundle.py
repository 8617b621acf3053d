"""The support bundle: one .tar.gz with what a support ticket needs, every secret redacted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import socket
import sqlite3
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import psutil

from jobengine import representation
from jobengine.errors import JobEngineError
from jobengine.model import Job, LogLine
from jobengine.redaction import MASK, SHORTEST_FRAGMENT, mask_url, redact, scrub
from jobengine.registry import JobType
from jobengine.settings import Settings
from jobengine.store import migrations
from jobengine.store.diagnosis import DiagnosisQueries
from jobengine.why import DEAD_AFTER, JobUrl

if TYPE_CHECKING:
    from jobengine.engine import Engine

DEFAULT_LOG_FILE = "jobengine.log"  # the worker's --log-file default, in its current folder
MOST_JOBS = 200  # non-terminal or recently failed jobs put in one bundle (named ones besides)
LOG_TAIL = 5 * 1024 * 1024  # bytes of the engine log kept: its end
Files = dict[str, str]

README = """jobengine support bundle
========================

Made {made} on host {host} for the database {database}.
Passwords in URLs, and values of settings named like password, secret, token or key, are
replaced by ***. Times are UTC.

What each file is:
{contents}
"""
DESCRIPTIONS = {
    "README.txt": "this file",
    "doctor.txt": "`jobengine doctor`: every health check, OK / WARN / FAIL, with its fix",
    "doctor.json": "the same checks as JSON",
    "workers.txt": "the workers table: host, pid, state, heartbeat, queues, job types, clock skew",
    "workers.json": "the same as JSON",
    "processes.json": "this host's engine processes: pid, command line, CPU, memory, start time",
    "engine.log": "the end of the engine's own log (the worker's --log-file)",
    "jobs/": "per job: ID.json (the job, its `why` verdict and its events), ID.timeline.txt"
    " (who moved it, when, why) and ID.log (its own log)",
    "schedules.json": "the recurring schedules with their last run and next fire times",
    "versions.json": "versions of jobengine, Python, the operating system and the database",
    "configuration.json": "the engine's settings, job types and JOBENGINE_* environment",
    "unreadable.txt": "why some of the above could not be read (the database was not reached)",
}


@dataclass(frozen=True)
class BundleOptions:
    jobs: Sequence[int] = ()
    since: float = 86400.0  # failed jobs of this many seconds back are included
    log_file: str | None = DEFAULT_LOG_FILE
    dead_after: float = DEAD_AFTER
    job_url: JobUrl | None = None


class Redactor:
    """Hides every secret it knows of (the passwords of the engine's URLs, the values of
    secret-looking JOBENGINE_* variables) and every password-looking thing it sees."""

    def __init__(self, urls: Iterable[str], secrets: Iterable[str]) -> None:
        self.urls = [url for url in urls if url]
        forms = {
            form
            for secret in secrets
            if len(secret) >= SHORTEST_FRAGMENT
            for form in (secret, quote(secret, safe=""), quote_plus(secret))
        }
        self.secrets = sorted(forms, key=len, reverse=True)

    @classmethod
    def of(cls, engine: Engine) -> Redactor:
        environment = {k: v for k, v in os.environ.items() if k.startswith("JOBENGINE_")}
        hidden = redact(environment)
        secrets = [value for key, value in environment.items() if hidden[key] == MASK]
        urls = [engine.url, *(value for value in environment.values() if "://" in value)]
        return cls(urls, secrets)

    def text(self, text: str) -> str:
        cleaned = scrub(text, self.urls)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, MASK)
        return cleaned

    def data(self, data: Any) -> str:
        shown = redact({"data": data})["data"]
        return self.text(json.dumps(shown, indent=2, sort_keys=True, default=str) + "\n")


def build(engine: Engine, options: BundleOptions | None = None) -> bytes:
    """The bundle as .tar.gz bytes: every file gathered, then every secret in it redacted."""
    options = options or BundleOptions()
    redactor = Redactor.of(engine)
    files: Files = {}
    report = engine.doctor(options.dead_after, options.job_url)
    files["doctor.txt"] = report.text() + "\n"
    files["doctor.json"] = redactor.data(report.to_dict())
    files["processes.json"] = redactor.data(engine_processes())
    files |= _engine_log(options.log_file)
    files["versions.json"] = redactor.data(versions(engine))
    files["configuration.json"] = redactor.data(configuration(engine, options))
    unread = []  # a bundle is wanted most when the database is down: the rest still goes in
    gatherers: list[Callable[[], Files]] = [
        lambda: _workers(engine, options, redactor),
        lambda: _jobs(engine, options, redactor),
        lambda: {"schedules.json": redactor.data(_schedules(engine))},
    ]
    for gather in gatherers:
        try:
            files |= gather()
        except JobEngineError as error:
            unread.append(str(error))
    if unread:
        files["unreadable.txt"] = "".join(f"{reason}\n" for reason in dict.fromkeys(unread))
    files["README.txt"] = _readme(engine, files)
    return pack({name: redactor.text(text) for name, text in files.items()})


def pack(files: Files) -> bytes:
    """A .tar.gz of `files` under one folder named after the moment it was made."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in sorted(files.items()):
            data = text.encode("utf-8", errors="replace")
            member = tarfile.TarInfo(f"jobengine-support-{stamp}/{name}")
            member.size, member.mtime, member.mode = len(data), int(time.time()), 0o600
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _readme(engine: Engine, files: Files) -> str:
    names = sorted(
        {name.split("/")[0] + "/" if "/" in name else name for name in [*files, "README.txt"]}
    )
    contents = "\n".join(f"  {name:<20} {DESCRIPTIONS.get(name, '')}" for name in names)
    if "engine.log" not in files:
        contents += "\n  (no engine.log: the log file was not found; pass --log-file)"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return README.format(
        made=made, host=socket.gethostname(), database=mask_url(engine.url), contents=contents
    )


def _workers(engine: Engine, options: BundleOptions, redactor: Redactor) -> Files:
    now = engine.clock.now()
    lines = engine.store.workers.overview(now, options.dead_after, include_stopped=True)[-200:]
    rows = [
        {**representation.worker(line), "types": line.record.types, "skew": line.record.clock_skew}
        for line in lines
    ]
    header = "id  host  pid  state  heartbeat_age_seconds  queues  concurrency  types  clock_skew"
    text = [header] + [
        f"{r['id']}  {r['host']}  {r['pid']}  {r['state']}  {r['heartbeat_age_seconds']}"
        f"  {','.join(r['queues']) or 'all'}  {r['concurrency']}  {','.join(r['types'])}"
        f"  {r['skew']}"
        for r in rows
    ]
    return {"workers.txt": "\n".join(text) + "\n", "workers.json": redactor.data(rows)}


def engine_processes() -> list[dict[str, Any]]:
    """This host's processes whose command line names jobengine, with CPU over 0.2 s."""
    processes = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if any("jobengine" in part for part in command):
            with contextlib.suppress(psutil.Error):
                process.cpu_percent(None)
                processes.append(process)
    time.sleep(0.2)  # the CPU share is measured over this
    found = []
    for process in processes:
        with contextlib.suppress(psutil.Error), process.oneshot():
            row = {
                "pid": process.pid,
                "parent_pid": process.ppid(),
                "command_line": " ".join(process.cmdline()),
                "cpu_percent": process.cpu_percent(None),
                "memory_rss_bytes": process.memory_info().rss,
                "threads": process.num_threads(),
                "status": process.status(),
                "started_at": representation.timestamp(process.create_time()),
            }
            found.append(row)
    return found


def _engine_log(path: str | None) -> Files:
    if not path or not os.path.isfile(path):
        return {}
    with open(path, "rb") as log_file:
        log_file.seek(max(0, os.path.getsize(path) - LOG_TAIL))
        return {"engine.log": log_file.read().decode("utf-8", errors="replace")}


def _jobs(engine: Engine, options: BundleOptions, redactor: Redactor) -> Files:
    named = (engine.store.jobs.get(job_id) for job_id in options.jobs)
    chosen: dict[int, Job] = {job.id: job for job in named if job is not None}
    missing = [job_id for job_id in options.jobs if job_id not in chosen]
    failed_since = engine.clock.now() - options.since
    for job in DiagnosisQueries(engine.store.database).worth_a_look(failed_since, MOST_JOBS):
        chosen.setdefault(job.id, job)
    files: Files = {}
    for job in chosen.values():
        files |= _job_files(engine, job, options, redactor)
    if missing:
        files["jobs/missing.txt"] = "".join(f"no job has id {job_id}\n" for job_id in missing)
    return files


def _job_files(engine: Engine, job: Job, options: BundleOptions, redactor: Redactor) -> Files:
    url = options.job_url(job.id) if options.job_url else None
    events = engine.store.jobs.events(job.id)
    verdict = engine.why(job.id, options.dead_after, options.job_url)
    data = {
        "job": representation.job(job, url),
        "why": verdict.to_dict(),
        "events": [representation.event(event) for event in events],
    }
    timeline = [f"job {job.id}{f' {url}' if url else ''}: {job.status} ({job.type})"]
    timeline += [
        f"{representation.timestamp(e.at)}  attempt {e.attempt}  {e.verb:<8}"
        f" {e.from_status or '-'} -> {e.to_status}  by {e.actor}"
        + (f": {e.reason}" * bool(e.reason))
        for e in events
    ]
    lines = engine.store.logs.read(job.id)
    return {
        f"jobs/{job.id}.json": redactor.data(data),
        f"jobs/{job.id}.timeline.txt": "\n".join(timeline) + "\n",
        f"jobs/{job.id}.log": "".join(_log_line(line) for line in lines),
    }


def _log_line(line: LogLine) -> str:
    return f"{representation.timestamp(line.at)} [{line.attempt}] {line.level:<7} {line.text}\n"


def _schedules(engine: Engine) -> list[dict[str, Any]]:
    last = engine.schedules.last_runs()
    shown = []
    for schedule in engine.schedules.list():
        problem, upcoming = None, []
        try:
            upcoming = engine.schedules.upcoming(schedule, 5)
        except JobEngineError as error:  # an expression this version cannot read: say so
            problem = str(error)
        data = representation.schedule(schedule, upcoming, last.get(schedule.name))
        shown.append({**data, "problem": problem})
    shown += [
        {"name": name, "unreadable": why} for name, why in engine.schedules.unreadable().items()
    ]
    return shown


def versions(engine: Engine) -> dict[str, Any]:
    found: dict[str, Any] = {
        "jobengine": _version("jobengine"),
        "python": sys.version,
        "platform": platform.platform(),
        "psycopg": _version("psycopg"),
        "sqlite_library": sqlite3.sqlite_version,
        "psutil": _version("psutil"),
    }
    try:
        database = engine.store.database
        found["database"], found["dialect"] = database.server_version(), database.dialect
        found["schema"] = migrations.applied_versions(database)
    except JobEngineError as error:
        found["database"] = f"not reached: {error}"
    return found


def _version(package: str) -> str | None:
    with contextlib.suppress(PackageNotFoundError):
        return version(package)
    return None


def configuration(engine: Engine, options: BundleOptions) -> dict[str, Any]:
    registry = engine.registry
    types = [job_type_settings(registry.get(name)) for name in registry.names()]
    return {
        "database_url": mask_url(engine.url),
        "host": socket.gethostname(),
        "current_folder": os.getcwd(),
        "log_file": os.path.abspath(options.log_file) if options.log_file else None,
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith("JOBENGINE_")},
        "job_types": types,
        "worker_defaults": asdict(Settings()),
    }


def job_type_settings(job_type: JobType) -> dict[str, Any]:
    names = ("name", "queue", "priority", "timeout", "max_attempts", "isolation", "idempotent")
    function = job_type.function
    where = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
    return {**{name: getattr(job_type, name) for name in names}, "function": where}
