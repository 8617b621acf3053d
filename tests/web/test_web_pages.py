"""The dashboard's pages: what they show, their live regions, their buttons, and their safety."""

from __future__ import annotations

import io
import re
import tarfile

import pytest
from conftest import PASSWORD, csrf_token
from starlette.testclient import TestClient
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import Engine, Status
from jobengine.errors import ConfigurationError
from jobengine.web import WebConfig, create_app

SCRIPT = "<script>alert('owned')</script>"
REGION = {"hx-request": "true", "hx-target": "region"}
STATIC_SCRIPTS = [
    '<script src="/static/htmx.min.js" defer>',
    '<script src="/static/dashboard.js" defer>',
]


def test_every_page_renders_with_its_navigation(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    web_engine.schedules.add("hourly", "greet", "0 * * * *", arguments={"name": "h"})
    for path, heading in [
        ("/", "Overview"),
        ("/jobs", "Jobs"),
        (f"/jobs/{job_id}", f"Job {job_id}"),
        ("/schedules", "Schedules"),
        ("/workers", "Workers"),
        ("/health", "Health"),
    ]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert f"<h1>{heading}" in page.text, path
        assert 'href="/jobs"' in page.text
    schedules = client.get("/schedules").text
    assert "hourly" in schedules
    assert "at the start of every hour" in schedules


def test_overview_counts_and_health_banner(client: TestClient, web_engine: Engine) -> None:
    for _ in range(3):
        web_engine.submit("greet", name="x")
    page = client.get("/").text
    assert re.search(r'<span class="number">3</span>\s*<span class="label">PENDING</span>', page)
    assert "no live worker" in page  # the banner: nothing will run these jobs
    assert 'href="/jobs?status=PENDING"' in page
    region = client.get("/", headers=REGION).text
    assert region.lstrip().startswith('<div id="overview"')
    assert "<html" not in region


def test_script_in_arguments_log_and_errors_renders_as_text(
    client: TestClient, web_engine: Engine
) -> None:
    job_id = web_engine.submit("greet", name=SCRIPT)
    with worker_thread(web_engine):
        wait_for_status(web_engine, job_id, {Status.SUCCESS})
    pages = [
        client.get(f"/jobs/{job_id}").text,
        client.get("/jobs").text,
        client.get(f"/jobs/{job_id}/log").text,
        client.get(f"/jobs?q={SCRIPT}").text,
    ]
    for page in pages:
        assert SCRIPT not in page
        assert "alert(" not in page or "&lt;script&gt;alert(" in page
        assert re.findall(r"<script\b[^>]*>", page) in ([], STATIC_SCRIPTS)
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in pages[0]  # argument, log
    assert pages[0].count("&lt;script&gt;") >= 2


def test_pages_forbid_inline_scripts_and_styles(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("fail")
    for path in ("/", "/jobs", f"/jobs/{job_id}", "/schedules", "/workers", "/health"):
        page = client.get(path)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), path
        assert not re.search(r"\son[a-z]+=", page.text), path
        assert not re.search(r"\sstyle=", page.text), path
    static = client.get("/static/htmx.min.js")
    assert static.status_code == 200
    assert "javascript" in static.headers["content-type"]


def test_jobs_filter_by_status_and_region(client: TestClient, web_engine: Engine) -> None:
    keep = web_engine.submit("greet", name="a")
    gone = web_engine.submit("greet", name="b")
    web_engine.cancel(gone)
    page = client.get("/jobs?status=CANCELED").text
    assert f'data-job="{gone}"' in page
    assert f'data-job="{keep}"' not in page
    assert '<option value="CANCELED" selected>' in page
    region = client.get("/jobs?status=PENDING", headers=REGION).text
    assert region.lstrip().startswith('<div id="jobs"')
    assert 'hx-get="/jobs?status=PENDING"' in region
    assert f'data-job="{keep}"' in region
    assert "unknown status" in client.get("/jobs?status=NOPE").text


def test_bulk_cancel_and_rerun(client: TestClient, web_engine: Engine) -> None:
    ids = [web_engine.submit("greet", name=str(n)) for n in range(3)]
    form = {"csrf_token": csrf_token(client), "action": "cancel", "job": [str(i) for i in ids]}
    refused = client.post("/jobs/bulk", data={**form, "csrf_token": "bad"})
    assert refused.status_code == 403
    assert {web_engine.get(i).status for i in ids} == {Status.PENDING}
    done = client.post("/jobs/bulk?status=CANCELED", data=form, headers=REGION)
    assert "3 job(s) canceled" in done.text
    assert {web_engine.get(i).status for i in ids} == {Status.CANCELED}
    again = client.post("/jobs/bulk", data={**form, "action": "rerun"}, headers=REGION)
    assert "3 job(s) started again" in again.text
    assert len(web_engine.list(status="PENDING")) == 3
    twice = client.post("/jobs/bulk", data=form, headers=REGION)
    assert "3 refused" in twice.text
    assert client.post("/jobs/bulk", data={**form, "action": "delete"}).status_code == 400
    empty = {"csrf_token": form["csrf_token"], "action": "cancel"}
    assert "no job selected" in client.post("/jobs/bulk", data=empty).text


def test_job_page_cancel_rerun_and_run_now(client: TestClient, web_engine: Engine) -> None:
    web_engine.schedules.add("hourly", "greet", "0 * * * *", arguments={"name": "h"})
    scheduled = web_engine.schedules.run_now("hourly")
    token = {"csrf_token": csrf_token(client)}
    page = client.get(f"/jobs/{scheduled}").text
    assert 'id="cancel-job"' in page and 'hx-confirm="Cancel job' in page
    assert 'id="run-schedule-now"' in page
    assert 'id="run-now"' not in page  # it is due already
    assert client.post(f"/jobs/{scheduled}/cancel").status_code == 403
    panel = client.post(f"/jobs/{scheduled}/cancel", data=token, headers=REGION)
    assert panel.text.lstrip().startswith('<section id="job-panel"')
    assert "status-canceled" in panel.text
    assert web_engine.get(scheduled).status is Status.CANCELED
    rerun = client.post(f"/jobs/{scheduled}/rerun", data=token, headers=REGION)
    assert rerun.status_code == 204
    new_id = int(rerun.headers["hx-redirect"].rsplit("/", 1)[1])
    assert web_engine.get(new_id).rerun_of == scheduled
    run = client.post(f"/jobs/{scheduled}/run-schedule-now", data=token, headers=REGION)
    assert web_engine.get(int(run.headers["hx-redirect"].rsplit("/", 1)[1])).schedule == "hourly"
    plain = client.post(f"/jobs/{new_id}/cancel", data=token, follow_redirects=False)
    assert (plain.status_code, plain.headers["location"]) == (303, f"/jobs/{new_id}")
    refused = client.post(f"/jobs/{new_id}/run-schedule-now", data=token)
    assert "did not come from a schedule" in refused.text


def test_log_follow_and_download(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("chatter", lines=3, pause=0.01)
    first = client.get(f"/jobs/{job_id}/log").text
    assert "No log lines yet" in first
    assert f'hx-get="/jobs/{job_id}/log?after=0&amp;level="' in first  # follows a waiting job
    with worker_thread(web_engine):
        wait_for_status(web_engine, job_id, {Status.SUCCESS})
    lines = client.get(f"/jobs/{job_id}/log").text
    assert lines.count('class="line level-info"') == 3
    assert "hx-get" not in lines  # an ended job's whole log: nothing to follow
    first, cursor = (int(n) for n in re.findall(r'data-line="(\d+)"', lines)[::2])
    following = client.get(f"/jobs/{job_id}/log?after={first}").text
    assert following.count('class="line level-info"') == 2
    assert f"after={cursor}" in following  # it saw lines: one more look
    last = client.get(f"/jobs/{job_id}/log?after={cursor}").text
    assert 'class="line' not in last
    assert "hx-get" not in last  # ended and nothing new: following stops
    assert "line 2 of 3" not in client.get(f"/jobs/{job_id}/log?level=ERROR").text
    download = client.get(f"/jobs/{job_id}/log/download")
    assert download.headers["content-disposition"] == f'attachment; filename="job-{job_id}.log"'
    rows = download.text.splitlines()
    assert len(rows) == 3
    assert "INFO" in rows[0] and "[attempt 1]" in rows[0] and rows[2].endswith("line 3 of 3")


def test_schedules_pause_and_resume_from_the_page(client: TestClient, web_engine: Engine) -> None:
    web_engine.schedules.add("hourly", "greet", "0 * * * *", arguments={"name": "h"})
    token = {"csrf_token": csrf_token(client)}
    paused = client.post("/schedules/hourly/pause", data=token, headers=REGION)
    assert "schedule hourly paused" in paused.text
    assert 'class="badge paused"' in paused.text
    assert web_engine.schedules.get("hourly").enabled is False
    client.post("/schedules/hourly/resume", data=token, headers=REGION)
    assert web_engine.schedules.get("hourly").enabled is True
    run = client.post("/schedules/hourly/run-now", data=token, headers=REGION)
    assert "job " in run.text and " started" in run.text
    assert client.post("/schedules/nothing/pause", data=token).status_code == 404


def test_workers_page_drain(client: TestClient, web_engine: Engine) -> None:
    with worker_thread(web_engine, heartbeat_interval=0.1) as worker:

        def listed() -> str:
            page = client.get("/workers").text
            return page if worker.id in page else ""

        assert "worker-alive" in wait_for(listed, what="the worker on the workers page")
        token = {"csrf_token": csrf_token(client)}
        drained = client.post(f"/workers/{worker.id}/drain", data=token, headers=REGION)
        assert f"worker {worker.id} asked to drain" in drained.text
        wait_for(worker.stopping.is_set, what="the worker to drain")


def test_unknown_job_page_is_404_and_escaped(client: TestClient) -> None:
    page = client.get("/jobs/%3Cscript%3E")
    assert page.status_code == 404
    assert "<script>" not in page.text.replace('<script src="/static/', "")
    assert "&lt;script&gt;" in page.text


def test_login_logout_and_the_session_cookie(secured: TestClient) -> None:
    away = secured.get("/jobs?status=FAILURE", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fjobs%3Fstatus%3DFAILURE"
    login = secured.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', login.text)
    assert token
    form = {"csrf_token": token.group(1), "next": "/jobs?status=FAILURE"}
    assert secured.post("/login", data={**form, "password": "wrong"}).status_code == 401
    no_csrf = {"password": PASSWORD, "next": "/"}
    assert secured.post("/login", data=no_csrf, follow_redirects=False).status_code == 403
    entered = secured.post("/login", data={**form, "password": PASSWORD}, follow_redirects=False)
    assert (entered.status_code, entered.headers["location"]) == (303, "/jobs?status=FAILURE")
    cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and PASSWORD not in cookie
    assert secured.get("/jobs").status_code == 200
    assert secured.get("/api/jobs").status_code == 200  # a logged-in browser may read the API
    secured.post("/logout", data={"csrf_token": csrf_token(secured)})
    assert secured.get("/jobs", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(secured: TestClient) -> None:
    from jobengine.web.actions import safe_next

    for target in ("//evil.example/x", "https://evil.example", "/\\evil", "evil", None):
        assert safe_next(target) == "/"
    assert safe_next("/jobs?status=FAILURE") == "/jobs?status=FAILURE"


def test_a_forged_session_cookie_is_no_login(secured: TestClient) -> None:
    secured.cookies.set("jobengine_session", "abc.1.9999999999.deadbeef")
    assert secured.get("/jobs", follow_redirects=False).status_code == 303


def test_listening_beyond_loopback_needs_a_password(sqlite_url: str) -> None:
    engine = Engine(sqlite_url)
    try:
        for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
            with pytest.raises(ConfigurationError, match="JOBENGINE_WEB_PASSWORD"):
                create_app(engine, WebConfig(host=host))
            create_app(engine, WebConfig(host=host, password="secret"))
        for loopback in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
            create_app(engine, WebConfig(host=loopback))
    finally:
        engine.close()


def test_the_config_never_shows_its_secrets() -> None:
    config = WebConfig(password="hunter2", tokens=("tok-123",))
    assert "hunter2" not in repr(config) and "tok-123" not in repr(config)


def test_read_only_pages_hide_and_refuse_actions(web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    app = create_app(web_engine, WebConfig(read_only=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get(f"/jobs/{job_id}").text
        assert "read-only" in page
        assert 'id="cancel-job"' not in page
        assert "Cancel selected" not in client.get("/jobs").text
        refused = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_token(client)})
        assert refused.status_code == 403
        assert web_engine.get(job_id).status is Status.PENDING


def test_without_auth_only_loopback_names_are_served(web_engine: Engine) -> None:
    app = create_app(web_engine, WebConfig(public_url="https://jobs.example.com"))
    with TestClient(app, base_url="http://rebound.example:8400") as rebound:
        refused = rebound.get("/api/jobs")
        assert refused.status_code == 421
        assert "127.0.0.1" in refused.text
    for name in ("http://localhost:8400", "http://[::1]:8400", "https://jobs.example.com"):
        with TestClient(app, base_url=name) as client:
            assert client.get("/api/jobs").status_code == 200, name


def test_the_health_page_downloads_the_support_bundle_with_a_csrf_token(
    client: TestClient,
) -> None:
    page = client.get("/health")
    assert 'action="/health/support-bundle"' in page.text
    refused = client.post("/health/support-bundle", data={"csrf_token": "bad"})
    assert refused.status_code == 403
    download = client.post("/health/support-bundle", data={"csrf_token": csrf_token(client)})
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    assert "attachment" in download.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as archive:
        assert any(name.endswith("README.txt") for name in archive.getnames())
