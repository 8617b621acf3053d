"""The Starlette application: every route of the pages, the API, /healthz and /metrics."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from jobengine.engine import Engine
from jobengine.web import actions, api, pages
from jobengine.web.config import WebConfig
from jobengine.web.dashboard import Dashboard, dashboard_of
from jobengine.web.metrics import metrics, registry_for
from jobengine.web.openapi import openapi
from jobengine.web.responses import EXCEPTION_HANDLERS, JsonResponse
from jobengine.web.security import SecurityMiddleware

GET, POST = ["GET"], ["POST"]
JOB = "/jobs/{job_id}"
API_JOB = "/api/jobs/{job_id}"


async def healthz(request: Request) -> Response:
    """200 while the database answers, 503 when it does not: for load balancers."""
    dashboard = dashboard_of(request)
    started = time.monotonic()
    try:
        await run_in_threadpool(dashboard.queries.ping)
    except Exception as error:
        return JsonResponse({"status": "unavailable", "problem": type(error).__name__}, 503)
    elapsed = round((time.monotonic() - started) * 1000, 1)
    return JsonResponse({"status": "ok", "database_ms": elapsed})


def page_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.overview, methods=GET),
        Route("/jobs", pages.jobs, methods=GET),
        Route("/jobs/bulk", actions.bulk_action, methods=POST),
        Route("/jobs/matching", pages.matching, methods=GET),
        Route(JOB, pages.job, methods=GET),
        Route(f"{JOB}/log", pages.job_log, methods=GET),
        Route(f"{JOB}/log/download", pages.job_log_download, methods=GET),
        Route(f"{JOB}/cancel", actions.cancel_job, methods=POST),
        Route(f"{JOB}/rerun", actions.rerun_job, methods=POST),
        Route(f"{JOB}/run-now", actions.run_job_now, methods=POST),
        Route(f"{JOB}/run-schedule-now", actions.run_schedule_now, methods=POST),
        Route("/schedules", pages.schedules, methods=GET),
        Route("/schedules/{name}/run-now", actions.run_schedule_now, methods=POST),
        Route("/schedules/{name}/{action:str}", actions.schedule_action, methods=POST),
        Route("/workers", pages.workers, methods=GET),
        Route("/workers/{worker_id}/{action:str}", actions.worker_action, methods=POST),
        Route("/health", pages.health, methods=GET),
        Route("/health/support-bundle", actions.support_bundle, methods=POST),
        Route("/login", actions.login_page, methods=GET),
        Route("/login", actions.login, methods=POST),
        Route("/logout", actions.logout, methods=POST),
    ]


def api_routes() -> list[BaseRoute]:
    return [
        Route("/api/openapi.json", openapi, methods=GET),
        Route("/api/jobs", api.list_jobs, methods=GET),
        Route("/api/jobs", api.submit_job, methods=POST),
        Route("/api/jobs/bulk", api.bulk_jobs, methods=POST),
        Route(API_JOB, api.get_job, methods=GET),
        Route(f"{API_JOB}/events", api.job_events, methods=GET),
        Route(f"{API_JOB}/log", api.job_log, methods=GET),
        Route(f"{API_JOB}/why", api.job_why, methods=GET),
        Route(f"{API_JOB}/cancel", api.cancel_job, methods=POST),
        Route(f"{API_JOB}/rerun", api.rerun_job, methods=POST),
        Route(f"{API_JOB}/run-now", api.run_job_now, methods=POST),
        Route("/api/schedules", api.list_schedules, methods=GET),
        Route("/api/schedules/{name}", api.get_schedule, methods=GET),
        Route("/api/schedules/{name}/{action:str}", api.change_schedule, methods=POST),
        Route("/api/workers", api.list_workers, methods=GET),
        Route("/api/workers/{worker_id}/{action:str}", api.change_worker, methods=POST),
        Route("/api/overview", api.overview, methods=GET),
        Route("/api/doctor", api.doctor, methods=GET),
    ]


def create_app(engine: Engine, config: WebConfig | None = None) -> Starlette:
    """The dashboard and API for `engine`; refuses a public bind without authentication."""
    config = config or WebConfig()
    config.check_binding()
    routes = [
        *page_routes(),
        *api_routes(),
        Route("/healthz", healthz, methods=GET),
        Route("/metrics", metrics, methods=GET),
        Mount("/static", StaticFiles(packages=[("jobengine.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, config=config)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    dashboard = Dashboard(engine, config)
    app.state.dashboard = dashboard
    app.state.metrics = registry_for(dashboard)
    return app
