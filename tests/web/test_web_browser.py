"""The dashboard in a real headless Chromium: filter, follow a log, cancel, download, pause.

Debian's `chromium` is driven by Playwright through `executable_path` (Playwright cannot
download its own browsers here). The job detail page is saved to docs/images/job-detail.png
for the README, so the picture stays current.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import register_jobs
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import Engine, Status
from jobengine.web import DashboardServer, WebConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "job-detail.png"
STEP = 15_000  # milliseconds Playwright waits for one thing to appear (a refresh is every 2 s)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium package is required here: apt-get install chromium")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


@contextmanager
def browser_page(sync_api: Any) -> Iterator[Any]:
    """A page of a headless Debian Chromium, closed with its browser afterwards."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(STEP)
            yield page
        finally:
            browser.close()


@pytest.fixture
def dashboard(sqlite_url: str) -> Iterator[tuple[Engine, str]]:
    """A real dashboard on a free port beside a real worker thread."""
    engine = register_jobs(Engine(sqlite_url))
    server = DashboardServer(engine, WebConfig(port=0)).start()
    try:
        yield engine, server.url
    finally:
        server.stop()
        engine.close()


def test_operator_filters_follows_a_log_cancels_downloads_and_pauses(
    dashboard: tuple[Engine, str], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    engine, url = dashboard
    engine.schedules.add("nightly_report", "greet", "30 2 * * *", arguments={"name": "night"})
    done = engine.submit("greet", name="<script>alert(1)</script>")
    with worker_thread(engine, concurrency=4):
        wait_for_status(engine, done, {Status.SUCCESS})
        running = engine.submit("chatter", lines=1000, pause=0.25)
        wait_for_status(engine, running, {Status.RUNNING})
        with browser_page(sync_api) as page:
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            operate(sync_api, page, engine, url, running, tmp_path)
            assert not [e for e in errors if "Content Security Policy" in e], errors
    schedule = engine.schedules.get("nightly_report")
    assert schedule.enabled is False


def operate(
    sync_api: Any, page: Any, engine: Engine, url: str, running: int, tmp_path: Path
) -> None:
    """The operator's path through the dashboard, step by step."""
    expect = sync_api.expect
    page.goto(url + "/")
    expect(page.locator("h1")).to_have_text("Overview")

    page.click("nav >> text=Jobs")
    page.select_option("#filter-status", "RUNNING")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(f"{url}/jobs?status=RUNNING")
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("RUNNING")

    page.click(f"a[href='/jobs/{running}']")
    expect(page.locator("#job-status")).to_have_text("RUNNING")
    page.evaluate("window.stayedOnThisPage = true")
    lines = page.locator("#log-lines .line")
    seen = lines.count()
    wait_for(lambda: lines.count() >= seen + 4, timeout=15, what="the log to grow in the page")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-job")
    expect(page.locator("#job-status")).to_have_text("CANCELED")
    assert page.evaluate("window.stayedOnThisPage") is True
    assert engine.get(running).status is Status.CANCELED
    expect(page.locator("table.timeline")).to_contain_text("dashboard")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    download_log(page, running, tmp_path)
    page.click("nav >> text=Schedules")
    row = page.locator("tr[data-schedule='nightly_report']")
    row.locator("button.pause").click()
    expect(row.locator(".badge")).to_have_text("paused")
    assert engine.schedules.get("nightly_report").enabled is False
    live_refresh_pauses_while_hidden(page)


def download_log(page: Any, job_id: int, folder: Path) -> None:
    """Download the job's log from its page, as a person would, and read the file."""
    with page.expect_download() as download_info:
        page.click("#download-log")
    download = download_info.value
    assert download.suggested_filename == f"job-{job_id}.log"
    saved = folder / download.suggested_filename
    download.save_as(saved)
    assert "line 1 of 1000" in saved.read_text()


HIDE = """
Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "%s"});
document.dispatchEvent(new Event("visibilitychange"));
"""


def live_refresh_pauses_while_hidden(page: Any) -> None:
    """The Live toggle refreshes every 2 s, not while the tab is hidden, and at once when shown."""

    def refresh(request: Any) -> bool:
        return "/schedules" in request.url and request.headers.get("hx-request") == "true"

    with page.expect_request(refresh, timeout=6000):
        pass  # refreshing while visible
    page.evaluate(HIDE % "hidden")
    page.wait_for_timeout(300)  # a refresh already under way may still land
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if refresh(request) else None)
    page.wait_for_timeout(4500)  # two refresh periods, on the browser's clock
    assert seen == [], seen
    with page.expect_request(refresh, timeout=1500):
        page.evaluate(HIDE % "visible")


def test_operator_runs_a_waiting_job_now_and_cancels_all_matching(
    dashboard: tuple[Engine, str],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    engine, url = dashboard
    later = engine.submit("greet", name="tomorrow", delay=86_400)
    batch = [engine.submit("greet", name=str(n), queue="batch") for n in range(3)]
    with browser_page(sync_api) as page:
        page.goto(f"{url}/jobs/{later}")
        page.click("#run-now")
        expect(page.locator("#job-panel .flash")).to_contain_text(f"job {later} is due now")
        expect(page.locator("#run-now")).to_have_count(0)
        assert engine.get(later).run_at <= engine.clock.now()

        page.goto(f"{url}/jobs?queue=batch")
        page.click("#cancel-matching")
        expect(page.locator("#matching-count")).to_have_text("3")
        page.wait_for_timeout(2500)  # a refresh period: the open question stays
        expect(page.locator("#matching-count")).to_have_text("3")
        page.click("#confirm-matching")
        expect(page.locator("#jobs .flash")).to_contain_text("3 job(s) canceled")
        expect(page.locator("table.jobs .status-canceled")).to_have_count(3)
    assert {engine.get(job_id).status for job_id in batch} == {Status.CANCELED}
    assert engine.get(later).status is Status.PENDING
