"""The dashboard's pages: Overview, Jobs, Job detail with its log, Schedules, Workers, Health."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobengine.errors import InvalidSchedule, JobNotFound
from jobengine.model import Job
from jobengine.store.logs import LogLine
from jobengine.web import bulk, seams
from jobengine.web.dashboard import Dashboard, dashboard_of, wants_region
from jobengine.web.filters import (
    MAX_ID,
    fetch_jobs,
    job_id_or_none,
    parse_filter,
    text_value,
    whole,
)
from jobengine.web.formatting import LEVEL_RANKS, level_rank, log_file_line

LOG_PAGE = 1000  # log lines sent at once to the page; the follower fetches the rest
DOWNLOAD_PAGE = 10_000


def load_job(dashboard: Dashboard, text: str) -> Job:
    """The job a path names, or 404 naming the problem."""
    job_id = job_id_or_none(text)
    job = dashboard.engine.store.jobs.get(job_id) if job_id is not None else None
    if job is None:
        raise HTTPException(404, f"no job has id {text!r}; find jobs at /jobs")
    return job


def overview(request: Request) -> Response:
    dashboard = dashboard_of(request)
    return dashboard.page(request, "overview", summary=dashboard.summary())


def jobs(request: Request, message: str | None = None) -> Response:
    dashboard = dashboard_of(request)
    wanted = parse_filter(request.query_params, dashboard.engine.clock.now())
    found = fetch_jobs(dashboard.queries, wanted)
    response = dashboard.page(request, "jobs", filter=wanted, page=found, message=message)
    if request.headers.get("hx-trigger") == "filters":  # the filter form: a clean URL
        response.headers["hx-push-url"] = "/jobs" + (f"?{wanted.query()}" if wanted.active else "")
    return response


def matching(request: Request) -> Response:
    """The confirmation of "cancel / rerun all matching": how many jobs it would change."""
    dashboard = dashboard_of(request)
    if dashboard.config.read_only:
        raise HTTPException(403, "the dashboard is in read-only mode: actions are turned off")
    action = bulk.check_action(request.query_params.get("action"))
    wanted = parse_filter(request.query_params, dashboard.engine.clock.now())
    found = bulk.matching(dashboard.queries, wanted, action)
    template = "jobs_matching.html" if wants_region(request) else "jobs_matching_page.html"
    return dashboard.render(request, template, found=found, filter=wanted, message=None)


def job_values(dashboard: Dashboard, job: Job, level: str) -> dict[str, Any]:
    """What the job page shows about one job (its log aside)."""
    engine = dashboard.engine
    schedule = None
    if job.schedule:
        try:
            schedule = engine.schedules.get(job.schedule)
        except (JobNotFound, InvalidSchedule):
            schedule = None
    return {
        "job": job,
        "events": engine.store.jobs.events(job.id),
        "related": dashboard.queries.related(job.id),
        "verdict": None if job.status.terminal else seams.why(engine, job.id),
        "schedule": schedule,
        "level": level,
    }


def log_level(request: Request) -> str:
    level = text_value("level", request.query_params.get("level", "")).upper()
    if level and level not in LEVEL_RANKS:
        raise HTTPException(400, f"unknown level {level!r}; use one of {', '.join(LEVEL_RANKS)}")
    return level


def job(request: Request) -> Response:
    dashboard = dashboard_of(request)
    found = load_job(dashboard, request.path_params["job_id"])
    level = log_level(request)
    values = job_values(dashboard, found, level)
    if not wants_region(request):
        values.update(log_values(dashboard, found, level, 0))
    return dashboard.page(request, "job", **values, message=None)


def shown(lines: list[LogLine], level: str) -> list[LogLine]:
    if not level:
        return lines
    least = LEVEL_RANKS[level]
    return [line for line in lines if level_rank(line.level) >= least]


def log_values(dashboard: Dashboard, job: Job, level: str, after: int) -> dict[str, Any]:
    """A page of log lines after the cursor, and whether the page should keep following."""
    lines = dashboard.engine.store.logs.read(job.id, after=after, limit=LOG_PAGE)
    cursor = lines[-1].id if lines else after
    # A follower that saw lines after the job ended takes one more look; a first read of an
    # ended job follows only to fetch the pages beyond the first.
    following = not job.status.terminal or (after > 0 and bool(lines)) or len(lines) == LOG_PAGE
    return {
        "lines": shown(lines, level),
        "cursor": cursor,
        "following": following,
        "level": level,
        "job": job,
    }


def job_log(request: Request) -> Response:
    """The lines after `after` and, while there may be more, the element that fetches them."""
    dashboard = dashboard_of(request)
    found = load_job(dashboard, request.path_params["job_id"])
    text = request.query_params.get("after", "")
    after = whole("after", text, 0, MAX_ID) if text else 0
    values = log_values(dashboard, found, log_level(request), after)
    return dashboard.render(request, "job_log.html", **values)


def job_log_download(request: Request) -> Response:
    """The whole log as a text file: job-<id>.log."""
    dashboard = dashboard_of(request)
    found = load_job(dashboard, request.path_params["job_id"])

    def lines() -> Iterator[str]:
        after = 0
        while True:
            page = dashboard.engine.store.logs.read(found.id, after=after, limit=DOWNLOAD_PAGE)
            for line in page:
                yield log_file_line(line.at, line.level, line.attempt, line.text)
            if len(page) < DOWNLOAD_PAGE:
                return
            after = page[-1].id

    return StreamingResponse(
        lines(),
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="job-{found.id}.log"'},
    )


def schedule_rows(dashboard: Dashboard) -> list[dict[str, Any]]:
    """Each schedule with its next fire times and last run (or the error that hides them)."""
    scheduler = dashboard.engine.schedules
    last_runs = scheduler.last_runs()
    rows = []
    for schedule in scheduler.list():
        try:
            upcoming, problem = scheduler.upcoming(schedule, 3), None
        except (InvalidSchedule, ValueError, OverflowError) as error:
            upcoming, problem = [], str(error)
        rows.append(
            {
                "schedule": schedule,
                "upcoming": upcoming,
                "problem": problem,
                "last_run": last_runs.get(schedule.name),
                "overdue": scheduler.overdue(schedule),
            }
        )
    return rows


def schedules(request: Request, message: str | None = None) -> Response:
    dashboard = dashboard_of(request)
    return dashboard.page(request, "schedules", rows=schedule_rows(dashboard), message=message)


def workers(request: Request, message: str | None = None) -> Response:
    dashboard = dashboard_of(request)
    everything = request.query_params.get("all") in ("1", "true", "yes")
    found = dashboard.engine.store.workers.overview(
        dashboard.engine.clock.now(), dashboard.config.dead_after, include_stopped=everything
    )
    return dashboard.page(request, "workers", workers=found, everything=everything, message=message)


def health(request: Request) -> Response:
    dashboard = dashboard_of(request)
    return dashboard.page(request, "health", summary=dashboard.summary())
