"""The dashboard's shared parts: the engine, its settings, the queries, and page rendering."""

from __future__ import annotations

import threading
import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from jobengine.engine import Engine
from jobengine.model import Status
from jobengine.representation import describe_recurrence
from jobengine.store.listing import JobQueries
from jobengine.web import formatting, seams
from jobengine.web.config import WebConfig
from jobengine.web.ended import EndedJobs
from jobengine.web.logins import LoginLimiter
from jobengine.web.seams import Check
from jobengine.web.security import Sessions, principal_of, session_of
from jobengine.web.summary import Summary, summarize

SUMMARY_SECONDS = 1.0  # how long every viewer shares one summary of the Overview and Health
DOCTOR_SECONDS = 5.0  # how long pages show one doctor's report before asking again
PAGE_ACTOR = "dashboard"
API_ACTOR = "http-api"
NAVIGATION = (
    ("overview", "/", "Overview"),
    ("jobs", "/jobs", "Jobs"),
    ("schedules", "/schedules", "Schedules"),
    ("workers", "/workers", "Workers"),
    ("health", "/health", "Health"),
)


class Dashboard:
    """One running dashboard: what every handler needs, built once."""

    def __init__(self, engine: Engine, config: WebConfig) -> None:
        self.engine = engine
        self.config = config
        self.queries = JobQueries(engine.store.database)
        self.sessions = Sessions(config)
        self.logins = LoginLimiter()
        self.ended = EndedJobs(self.queries)
        self._summary: tuple[float, Summary] | None = None
        self._summary_lock = threading.Lock()
        self._doctor: tuple[float, list[Check] | None] | None = None
        self._doctor_lock = threading.Lock()
        self.templates = Environment(
            loader=PackageLoader("jobengine.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            time_text=formatting.time_text,
            duration=formatting.duration,
            relative=formatting.relative,
            pretty_json=formatting.pretty_json,
            compact_json=formatting.compact_json,
            describe=describe_recurrence,
            level_choices=formatting.LEVEL_CHOICES,
            statuses=[status.value for status in Status],
            navigation=NAVIGATION,
        )

    def summary(self) -> Summary:
        """The Overview's and Health's figures, shared by every viewer for a second."""
        with self._summary_lock:
            cached = self._summary
            if cached is not None and time.monotonic() - cached[0] < SUMMARY_SECONDS:
                return cached[1]
            found = self.fresh_summary()
            self._summary = (time.monotonic(), found)
            return found

    def fresh_summary(self) -> Summary:
        """The figures read now (the doctor's checks may be a few seconds old)."""
        return summarize(
            self.engine, self.queries, self.ended, self.doctor_checks, self.config.dead_after
        )

    def doctor_checks(self) -> list[Check] | None:
        """The doctor's checks, asked again at most every DOCTOR_SECONDS: every viewer's
        refresh would otherwise run every check every 2 seconds."""
        with self._doctor_lock:
            cached = self._doctor
            if cached is not None and time.monotonic() - cached[0] < DOCTOR_SECONDS:
                return cached[1]
            found = seams.doctor(self.engine)
            self._doctor = (time.monotonic(), found)
            return found

    def render(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """A template with what every page needs: CSRF token, modes, the current time."""
        session = session_of(request)
        page = self.templates.get_template(template).render(
            request_path=request.url.path,
            csrf_token=self.sessions.csrf_token(session),
            read_only=self.config.read_only,
            auth_enabled=self.config.auth_enabled,
            logged_in=principal_of(request) == "session",
            now=self.engine.clock.now(),
            **values,
        )
        # text from a job is escaped, and a lone surrogate (no UTF-8 has one) written \udXXX
        return HTMLResponse(page.encode("utf-8", "backslashreplace"), status_code)

    def page(self, request: Request, name: str, **values: Any) -> HTMLResponse:
        """The whole page, or only its live region when htmx asks (a refresh, a filter)."""
        template = f"{name}_region.html" if wants_region(request) else f"{name}.html"
        return self.render(request, template, **values)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_region(request: Request) -> bool:
    """An htmx request aimed at one element (a refresh, a filter), not a history restore."""
    return (
        is_htmx(request)
        and bool(request.headers.get("hx-target"))
        and not request.headers.get("hx-history-restore-request")
    )


def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard
