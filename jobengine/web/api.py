"""The HTTP API under /api: jobs, their events and logs, schedules, workers, health; JSON only."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from jobengine import representation
from jobengine.errors import JobNotFound
from jobengine.web import bulk, seams
from jobengine.web.api_input import read_body, submission
from jobengine.web.dashboard import API_ACTOR, Dashboard, dashboard_of
from jobengine.web.filters import MAX_ID, fetch_jobs, parse_filter, text_value, whole
from jobengine.web.formatting import LEVEL_RANKS, level_rank
from jobengine.web.pages import load_job, schedule_rows
from jobengine.web.responses import JsonResponse
from jobengine.web.security import check_csrf

READ_ONLY = "the dashboard is in read-only mode: the API refuses every change"
NEXT_FIRE_TIMES = 5
LOG_LIMIT = 10_000
BULK_FIELDS = ("action", "reason", "dry_run", "upto")


def job_json(dashboard: Dashboard, job: Any) -> dict[str, Any]:
    return representation.job(job, dashboard.config.job_url(job.id))


def allow_change(request: Request) -> Dashboard:
    """The dashboard, once a change is allowed: not read-only, and a token or CSRF header."""
    dashboard = dashboard_of(request)
    if dashboard.config.read_only:
        raise HTTPException(403, READ_ONLY)
    check_csrf(request, dashboard.sessions, None)
    return dashboard


def list_jobs(request: Request) -> Response:
    dashboard = dashboard_of(request)
    wanted = parse_filter(request.query_params, dashboard.engine.clock.now())
    found = fetch_jobs(dashboard.queries, wanted)
    return JsonResponse(
        {
            "jobs": [job_json(dashboard, job) for job in found.jobs],
            "next_after": found.older,
            "previous_before": found.newer,
        }
    )


async def submit_job(request: Request) -> Response:
    dashboard = allow_change(request)
    options = submission(await read_body(request, required=True))
    job_type = options.pop("type")
    try:
        job_id = await run_in_threadpool(
            lambda: dashboard.engine.submit(job_type, actor=API_ACTOR, **options)
        )
    except JobNotFound as error:  # the parent named in the body
        raise HTTPException(422, str(error)) from None
    job = await run_in_threadpool(dashboard.engine.get, job_id)
    return JsonResponse(job_json(dashboard, job), 201, headers={"location": f"/api/jobs/{job_id}"})


def get_job(request: Request) -> Response:
    dashboard = dashboard_of(request)
    return JsonResponse(job_json(dashboard, load_job(dashboard, request.path_params["job_id"])))


def job_events(request: Request) -> Response:
    dashboard = dashboard_of(request)
    job = load_job(dashboard, request.path_params["job_id"])
    events = dashboard.engine.store.jobs.events(job.id)
    return JsonResponse({"job_id": job.id, "events": [representation.event(e) for e in events]})


def job_log(request: Request) -> Response:
    """Log lines after the cursor `after`; follow a job by passing `next_after` back."""
    dashboard = dashboard_of(request)
    job = load_job(dashboard, request.path_params["job_id"])
    params = request.query_params
    after = whole("after", params["after"], 0, MAX_ID) if params.get("after") else 0
    limit = whole("limit", params["limit"], 1, LOG_LIMIT) if params.get("limit") else 1000
    level = text_value("level", params.get("level", "")).upper()
    if level and level not in LEVEL_RANKS:
        raise HTTPException(400, f"unknown level {level!r}; use one of {', '.join(LEVEL_RANKS)}")
    lines = dashboard.engine.store.logs.read(job.id, after=after, limit=limit)
    wanted = [line for line in lines if not level or level_rank(line.level) >= LEVEL_RANKS[level]]
    return JsonResponse(
        {
            "job_id": job.id,
            "job_status": job.status.value,
            "lines": [representation.log_line(line) for line in wanted],
            "next_after": lines[-1].id if lines else after,
            "ended": job.status.terminal and len(lines) < limit,
        }
    )


def job_why(request: Request) -> Response:
    dashboard = dashboard_of(request)
    job = load_job(dashboard, request.path_params["job_id"])
    verdict = seams.why(dashboard.engine, job.id)
    available = verdict is not None or getattr(dashboard.engine, "why", None) is not None
    return JsonResponse(
        {
            "job_id": job.id,
            "available": available,
            "verdict": verdict.to_dict() if verdict else None,
        }
    )


async def cancel_job(request: Request) -> Response:
    dashboard = allow_change(request)
    body = await read_body(request, required=False)
    reason = body.get("reason") if body else None
    if reason is not None and not isinstance(reason, str):
        raise HTTPException(400, "reason must be text")
    if body and set(body) - {"reason"}:
        raise HTTPException(400, f"unknown field(s) {sorted(set(body) - {'reason'})}; use reason")
    reason = text_value("reason", reason) if reason else None
    job = await run_in_threadpool(load_job, dashboard, request.path_params["job_id"])
    await run_in_threadpool(dashboard.engine.cancel, job.id, API_ACTOR, reason)
    job = await run_in_threadpool(dashboard.engine.get, job.id)
    return JsonResponse(job_json(dashboard, job))


async def rerun_job(request: Request) -> Response:
    dashboard = allow_change(request)
    job = await run_in_threadpool(load_job, dashboard, request.path_params["job_id"])
    new_id = await run_in_threadpool(dashboard.engine.rerun, job.id, API_ACTOR)
    new_job = await run_in_threadpool(dashboard.engine.get, new_id)
    return JsonResponse(
        job_json(dashboard, new_job), 201, headers={"location": f"/api/jobs/{new_id}"}
    )


async def run_job_now(request: Request) -> Response:
    """Make a PENDING job that waits for a later time due now (one already due stays as is)."""
    dashboard = allow_change(request)
    job = await run_in_threadpool(load_job, dashboard, request.path_params["job_id"])
    await run_in_threadpool(dashboard.engine.run_now, job.id, API_ACTOR)
    job = await run_in_threadpool(dashboard.engine.get, job.id)
    return JsonResponse(job_json(dashboard, job))


def bulk_options(request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
    """The checked fields of a bulk body: action, reason, dry_run, upto; or 400."""
    assert body is not None
    unknown = sorted(set(body) - set(BULK_FIELDS))
    if unknown:
        raise HTTPException(400, f"unknown field(s) {unknown}; use {', '.join(BULK_FIELDS)}")
    paging = [name for name in ("limit", "after", "before") if name in request.query_params]
    if paging:
        raise HTTPException(400, f"{', '.join(paging)}: a bulk action takes no page, only filters")
    action = body.get("action")
    if not isinstance(action, str) or action not in bulk.ACTIONS:
        raise HTTPException(400, "action is required: 'cancel' or 'rerun'")
    reason, dry_run, upto = body.get("reason"), body.get("dry_run", False), body.get("upto")
    if reason is not None and (action != "cancel" or not isinstance(reason, str)):
        raise HTTPException(400, "reason must be text, and only a cancel takes one")
    if not isinstance(dry_run, bool):
        raise HTTPException(400, "dry_run must be true or false")
    if upto is not None and (
        isinstance(upto, bool) or not isinstance(upto, int) or not 0 <= upto <= MAX_ID
    ):
        raise HTTPException(400, f"upto must be a job id from 0 to {MAX_ID}")
    reason = text_value("reason", reason) if reason else None
    return {"action": action, "reason": reason, "dry_run": dry_run, "upto": upto}


async def bulk_jobs(request: Request) -> Response:
    """Cancel or rerun every job the query's filters match (at most bulk.MOST_MATCHING), or
    with dry_run only count them."""
    dashboard = allow_change(request)
    options = bulk_options(request, await read_body(request, required=True))
    wanted = parse_filter(request.query_params, dashboard.engine.clock.now())
    found = await run_in_threadpool(
        bulk.matching, dashboard.queries, wanted, options["action"], options["upto"]
    )
    if found.too_many:
        raise HTTPException(422, str(found.problem()))
    answer: dict[str, Any] = {
        "action": found.action,
        "dry_run": options["dry_run"],
        "matching": found.count,
        "upto": found.upto,
        "changed": 0,
        "refused": [],
        "new_jobs": [],
    }
    if options["dry_run"] or found.count == 0:
        return JsonResponse(answer)
    done = await run_in_threadpool(
        bulk.act_on_matching,
        dashboard.engine,
        dashboard.queries,
        found,
        API_ACTOR,
        options["reason"],
    )
    answer["changed"], answer["new_jobs"] = done.done, done.new_jobs
    answer["refused"] = [{"job_id": job_id, "message": why} for job_id, why in done.refused]
    return JsonResponse(answer)


def schedule_json(dashboard: Dashboard, row: dict[str, Any]) -> dict[str, Any]:
    schedule = row["schedule"]
    upcoming = dashboard.engine.schedules.upcoming(schedule, NEXT_FIRE_TIMES)
    return representation.schedule(schedule, upcoming, row["last_run"])


def list_schedules(request: Request) -> Response:
    dashboard = dashboard_of(request)
    rows = [row for row in schedule_rows(dashboard) if row["problem"] is None]
    return JsonResponse({"schedules": [schedule_json(dashboard, row) for row in rows]})


def get_schedule(request: Request) -> Response:
    dashboard = dashboard_of(request)
    name = text_value("schedule name", request.path_params["name"])
    schedule = dashboard.engine.schedules.get(name)
    last_run = dashboard.engine.schedules.last_runs().get(name)
    row = {"schedule": schedule, "last_run": last_run}
    return JsonResponse(schedule_json(dashboard, row))


async def change_schedule(request: Request) -> Response:
    """pause, resume or run-now; run-now answers with the job it started."""
    dashboard = allow_change(request)
    name = text_value("schedule name", request.path_params["name"])
    action = request.path_params["action"]
    if action not in ("pause", "resume", "run-now"):
        raise HTTPException(404, f"schedules can pause, resume or run-now, not {action!r}")
    scheduler = dashboard.engine.schedules
    if action == "run-now":
        job_id = await run_in_threadpool(scheduler.run_now, name, API_ACTOR)
        job = await run_in_threadpool(dashboard.engine.get, job_id)
        return JsonResponse(
            job_json(dashboard, job), 201, headers={"location": f"/api/jobs/{job_id}"}
        )
    change = scheduler.pause if action == "pause" else scheduler.resume
    schedule = await run_in_threadpool(change, name)
    last_run = await run_in_threadpool(lambda: scheduler.last_runs().get(name))
    row = {"schedule": schedule, "last_run": last_run}
    return JsonResponse(await run_in_threadpool(schedule_json, dashboard, row))


def list_workers(request: Request) -> Response:
    dashboard = dashboard_of(request)
    flag = request.query_params.get("include_stopped", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise HTTPException(400, "include_stopped must be true or false")
    found = dashboard.engine.store.workers.overview(
        dashboard.engine.clock.now(), dashboard.config.dead_after, flag in ("true", "1")
    )
    return JsonResponse({"workers": [representation.worker(worker) for worker in found]})


async def change_worker(request: Request) -> Response:
    """drain (finish running jobs, take no new ones, stop) or restart one worker."""
    dashboard = allow_change(request)
    worker_id = text_value("worker id", request.path_params["worker_id"])
    action = request.path_params["action"]
    if action not in ("drain", "restart"):
        raise HTTPException(404, f"workers can drain or restart, not {action!r}")
    word = "restart" if action == "restart" else "drain"
    count = await run_in_threadpool(dashboard.engine.store.workers.request, word, [worker_id])
    if count == 0:
        raise HTTPException(
            404, f"no running worker has id {worker_id!r}; list them at /api/workers"
        )
    return JsonResponse({"worker_id": worker_id, "requested": word}, 202)


def summary_json(dashboard: Dashboard) -> dict[str, Any]:
    summary = dashboard.fresh_summary()
    oldest = summary.oldest_due
    return {
        "at": representation.timestamp(summary.now),
        "counts": summary.counts,
        "live_workers": summary.live_workers,
        "oldest_due_job": job_json(dashboard, oldest) if oldest else None,
        "finished_per_minute": [
            {
                "minute": representation.timestamp(minute.start),
                "succeeded": minute.succeeded,
                "failed": minute.failed,
                "canceled": minute.canceled,
            }
            for minute in summary.minutes
        ],
        "doctor_available": summary.doctor_available,
        "checks": [check.to_dict() for check in summary.checks],
    }


def overview(request: Request) -> Response:
    return JsonResponse(summary_json(dashboard_of(request)))


def doctor(request: Request) -> Response:
    """The doctor's checks, made now."""
    checks = seams.doctor(dashboard_of(request).engine)
    found = [check.to_dict() for check in checks or []]
    return JsonResponse({"available": checks is not None, "checks": found})
