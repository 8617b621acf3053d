"""What the pages' buttons do: each a POST with a CSRF token, refused in read-only mode."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobengine.model import Job
from jobengine.web import bulk, pages, seams
from jobengine.web.dashboard import PAGE_ACTOR, dashboard_of, is_htmx
from jobengine.web.filters import MAX_ID, job_id_or_none, parse_filter, text_value, whole
from jobengine.web.formatting import time_text
from jobengine.web.security import CSRF_FIELD, check_csrf

READ_ONLY = "the dashboard is in read-only mode: actions are turned off"


async def checked_form(request: Request) -> FormData:
    """The posted form, once the action is allowed: not read-only, and the CSRF token fits."""
    dashboard = dashboard_of(request)
    if dashboard.config.read_only:
        raise HTTPException(403, READ_ONLY)
    form = await request.form(max_files=0, max_fields=bulk.MAX_SELECTED + 10)
    submitted = form.get(CSRF_FIELD)
    check_csrf(request, dashboard.sessions, submitted if isinstance(submitted, str) else None)
    return form


def moved(request: Request, path: str) -> Response:
    """Go to another page: an htmx request follows without a reload, a form by redirect."""
    if is_htmx(request):
        return Response(status_code=204, headers={"hx-redirect": path})
    return RedirectResponse(path, 303)


def job_outcome(request: Request, job_id: int, message: str) -> Response:
    """The job's panel again, with what just happened (or its page, for a plain form)."""
    if not is_htmx(request):
        return RedirectResponse(f"/jobs/{job_id}", 303)
    dashboard = dashboard_of(request)
    job = dashboard.engine.get(job_id)
    values = pages.job_values(dashboard, job, "")
    return dashboard.render(request, "job_region.html", **values, message=message)


async def support_bundle(request: Request) -> Response:
    """The support bundle as a download; it changes nothing, so read-only mode allows it."""
    dashboard = dashboard_of(request)
    form = await request.form(max_files=0, max_fields=10)
    submitted = form.get(CSRF_FIELD)
    check_csrf(request, dashboard.sessions, submitted if isinstance(submitted, str) else None)
    data = await run_in_threadpool(seams.support_bundle, dashboard.engine)
    if data is None:
        raise HTTPException(404, "this engine cannot build a support bundle")
    name = "jobengine-support.tar.gz"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type="application/gzip", headers=headers)


async def cancel_job(request: Request) -> Response:
    await checked_form(request)
    dashboard = dashboard_of(request)
    job = await run_in_threadpool(pages.load_job, dashboard, request.path_params["job_id"])
    status = await run_in_threadpool(dashboard.engine.cancel, job.id, PAGE_ACTOR)
    message = "canceled" if status.terminal else "cancel requested: the worker is stopping it"
    return await run_in_threadpool(job_outcome, request, job.id, message)


async def rerun_job(request: Request) -> Response:
    await checked_form(request)
    dashboard = dashboard_of(request)
    job = await run_in_threadpool(pages.load_job, dashboard, request.path_params["job_id"])
    new_id = await run_in_threadpool(dashboard.engine.rerun, job.id, PAGE_ACTOR)
    return moved(request, f"/jobs/{new_id}")


async def run_job_now(request: Request) -> Response:
    """Make a PENDING job that waits for a later time due now."""
    await checked_form(request)
    dashboard = dashboard_of(request)
    job = await run_in_threadpool(pages.load_job, dashboard, request.path_params["job_id"])
    changed = await run_in_threadpool(dashboard.engine.run_now, job.id, PAGE_ACTOR)
    message = due_now_message(job, dashboard.engine.clock.now(), changed)
    return await run_in_threadpool(job_outcome, request, job.id, message)


def due_now_message(job: Job, now: float, changed: bool) -> str:
    """What Run now did to `job` as it was just before."""
    if not changed:
        return f"job {job.id} was already due: nothing changed; the next free worker takes it"
    if job.run_at <= now:  # its run_at held no time (a row written by hand)
        return f"job {job.id} is due now (its run_at held no time); the next free worker takes it"
    return (
        f"job {job.id} is due now instead of {time_text(job.run_at)}; the next free worker takes it"
    )


async def run_schedule_now(request: Request) -> Response:
    """Run the job's schedule (or the schedule named in the path) once, now."""
    await checked_form(request)
    dashboard = dashboard_of(request)
    if "job_id" in request.path_params:
        job = await run_in_threadpool(pages.load_job, dashboard, request.path_params["job_id"])
        if not job.schedule:
            raise HTTPException(409, f"job {job.id} did not come from a schedule")
        name = job.schedule
    else:
        name = text_value("schedule name", request.path_params["name"])
    new_id = await run_in_threadpool(dashboard.engine.schedules.run_now, name, PAGE_ACTOR)
    if "job_id" in request.path_params:
        return moved(request, f"/jobs/{new_id}")
    return await run_in_threadpool(
        pages.schedules, request, f"schedule {name}: job {new_id} started"
    )


def selected_ids(form: FormData) -> list[int]:
    values = [value for value in form.getlist("job") if isinstance(value, str)]
    ids = [job_id_or_none(value) for value in values]
    if not ids:
        raise HTTPException(400, "no job selected: tick the jobs to act on first")
    if None in ids:
        raise HTTPException(400, "a selected job id is not a number")
    if len(ids) > bulk.MAX_SELECTED:
        raise HTTPException(
            400, f"select at most {bulk.MAX_SELECTED} jobs at once, or act on all matching"
        )
    return [job_id for job_id in ids if job_id is not None]


def act_on_all_matching(request: Request, form: FormData, action: str) -> str:
    """Cancel or rerun every job the page's filter matches, up to the newest job counted when
    the confirmation was shown (`upto`); one sentence saying what happened."""
    dashboard = dashboard_of(request)
    wanted = parse_filter(request.query_params, dashboard.engine.clock.now())
    text = form.get("upto")
    upto = whole("upto", text, 0, MAX_ID) if isinstance(text, str) and text else None
    found = bulk.matching(dashboard.queries, wanted, action, upto)
    problem = found.problem()
    if problem is not None:
        return problem
    done = bulk.act_on_matching(dashboard.engine, dashboard.queries, found, PAGE_ACTOR, None)
    return done.sentence()


async def bulk_action(request: Request) -> Response:
    """Cancel or rerun the ticked jobs of the jobs page, or (scope=matching) all it matches."""
    form = await checked_form(request)
    action = bulk.check_action(form.get("action"))
    dashboard = dashboard_of(request)
    if form.get("scope") == "matching":
        message = await run_in_threadpool(act_on_all_matching, request, form, action)
    else:
        ids = selected_ids(form)
        outcome = await run_in_threadpool(
            bulk.act_on_each, dashboard.engine, action, ids, PAGE_ACTOR
        )
        message = outcome.sentence()
    if not is_htmx(request):
        query = request.url.query
        return RedirectResponse("/jobs" + (f"?{query}" if query else ""), 303)
    return await run_in_threadpool(pages.jobs, request, message)


async def schedule_action(request: Request) -> Response:
    """Pause or resume a schedule."""
    await checked_form(request)
    dashboard = dashboard_of(request)
    name = text_value("schedule name", request.path_params["name"])
    action = request.path_params["action"]
    if action not in ("pause", "resume"):
        raise HTTPException(404, f"schedules can pause, resume or run-now, not {action!r}")
    scheduler = dashboard.engine.schedules
    change = scheduler.pause if action == "pause" else scheduler.resume
    await run_in_threadpool(change, name)
    message = f"schedule {name} {'paused' if action == 'pause' else 'resumed'}"
    if not is_htmx(request):
        return RedirectResponse("/schedules", 303)
    return await run_in_threadpool(pages.schedules, request, message)


async def worker_action(request: Request) -> Response:
    """Ask one worker to drain (finish its jobs, take no new ones, then stop) or to restart."""
    await checked_form(request)
    dashboard = dashboard_of(request)
    worker_id = text_value("worker id", request.path_params["worker_id"])
    action = request.path_params["action"]
    if action not in ("drain", "restart"):
        raise HTTPException(404, f"workers can drain or restart, not {action!r}")
    count = await run_in_threadpool(dashboard.engine.store.workers.request, action, [worker_id])
    if count == 0:
        raise HTTPException(404, f"no running worker has id {worker_id!r}; see /workers")
    message = f"worker {worker_id} asked to {action}"
    if not is_htmx(request):
        return RedirectResponse("/workers", 303)
    return await run_in_threadpool(pages.workers, request, message)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path on this site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def login_page(request: Request, problem: str | None = None, status_code: int = 200) -> Response:
    dashboard = dashboard_of(request)
    if not dashboard.config.auth_enabled:
        return RedirectResponse("/", 303)
    target = safe_next(request.query_params.get("next"))
    return dashboard.render(
        request, "login.html", status_code, problem=problem, target=target, message=None
    )


def client_address(request: Request) -> str:
    """Where the request comes from (behind a reverse proxy: the proxy's address)."""
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    """Log in with the password; after FAILURES wrong ones from one address within WINDOW
    seconds, that address gets 429 (whatever it sends) until the window has passed."""
    dashboard = dashboard_of(request)
    form = await request.form(max_files=0, max_fields=10)
    submitted = form.get(CSRF_FIELD)
    check_csrf(request, dashboard.sessions, submitted if isinstance(submitted, str) else None)
    address = client_address(request)
    wait = dashboard.logins.wait(address)
    if wait:
        problem = (
            f"too many wrong passwords from your address ({dashboard.logins.failures} within"
            f" {dashboard.logins.window:g} s): wait {wait} s, then try again"
        )
        refused = login_page(request, problem, 429)
        refused.headers["retry-after"] = str(wait)
        return refused
    password = form.get("password")
    target = form.get("next")
    if not isinstance(password, str) or not dashboard.sessions.password_matches(password):
        dashboard.logins.failed(address)
        return login_page(request, "wrong password", 401)
    dashboard.logins.succeeded(address)
    response = RedirectResponse(safe_next(target if isinstance(target, str) else None), 303)
    session = dashboard.sessions.new(authenticated=True)
    response.headers.append("set-cookie", dashboard.sessions.cookie(session))
    return response


async def logout(request: Request) -> Response:
    dashboard = dashboard_of(request)
    form = await request.form(max_files=0, max_fields=10)
    submitted = form.get(CSRF_FIELD)
    check_csrf(request, dashboard.sessions, submitted if isinstance(submitted, str) else None)
    response = RedirectResponse("/login", 303)
    response.headers.append("set-cookie", dashboard.sessions.cookie(dashboard.sessions.new()))
    return response
