"""Run now for a PENDING job due later: the job page's button and POST /api/jobs/ID/run-now."""

from __future__ import annotations

import time

from conftest import TOKEN, csrf_token
from starlette.testclient import TestClient
from waiting import wait_for_status, worker_thread

from jobengine import Engine, Status
from jobengine.web import WebConfig, create_app

REGION = {"hx-request": "true", "hx-target": "region"}
BEARER = {"authorization": f"Bearer {TOKEN}"}


def run_now_events(engine: Engine, job_id: int) -> list[tuple[str, str]]:
    return [(e.verb, e.actor) for e in engine.events(job_id) if e.verb == "run_now"]


def test_the_button_shows_only_for_a_job_due_later(client: TestClient, web_engine: Engine) -> None:
    later = web_engine.submit("greet", name="later", delay=3600)
    due = web_engine.submit("greet", name="due")
    assert 'id="run-now"' in client.get(f"/jobs/{later}").text
    assert 'id="run-now"' not in client.get(f"/jobs/{due}").text
    web_engine.cancel(due)
    assert 'id="run-now"' not in client.get(f"/jobs/{due}").text


def test_run_now_from_the_page_makes_it_due_and_a_worker_runs_it(
    client: TestClient, web_engine: Engine
) -> None:
    later = web_engine.submit("greet", name="later", delay=3600)
    token = {"csrf_token": csrf_token(client)}
    assert client.post(f"/jobs/{later}/run-now").status_code == 403  # no CSRF token
    assert web_engine.get(later).run_at > time.time() + 3000
    panel = client.post(f"/jobs/{later}/run-now", data=token, headers=REGION)
    assert panel.status_code == 200
    assert panel.text.lstrip().startswith('<section id="job-panel"')
    assert f"job {later} is due now instead of" in panel.text
    assert 'id="run-now"' not in panel.text
    assert web_engine.get(later).run_at <= time.time()
    assert run_now_events(web_engine, later) == [("run_now", "dashboard")]
    again = client.post(f"/jobs/{later}/run-now", data=token, headers=REGION)
    assert "was already due: nothing changed" in again.text
    plain = client.post(f"/jobs/{later}/run-now", data=token, follow_redirects=False)
    assert (plain.status_code, plain.headers["location"]) == (303, f"/jobs/{later}")
    with worker_thread(web_engine):
        wait_for_status(web_engine, later, {Status.SUCCESS})
    ended = client.post(f"/jobs/{later}/run-now", data=token)
    assert ended.status_code == 409
    assert "only a PENDING job waits for its time" in ended.text
    assert client.post("/jobs/999999/run-now", data=token).status_code == 404


def test_read_only_hides_and_refuses_run_now(web_engine: Engine) -> None:
    later = web_engine.submit("greet", name="later", delay=3600)
    app = create_app(web_engine, WebConfig(read_only=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert 'id="run-now"' not in client.get(f"/jobs/{later}").text
        refused = client.post(f"/jobs/{later}/run-now", data={"csrf_token": csrf_token(client)})
        assert refused.status_code == 403
        api = client.post(f"/api/jobs/{later}/run-now", headers={"x-csrf-token": "x"})
        assert api.status_code == 403
    assert web_engine.get(later).run_at > time.time() + 3000
    assert run_now_events(web_engine, later) == []


def test_api_run_now(web_engine: Engine) -> None:
    later = web_engine.submit("greet", name="later", delay=3600)
    app = create_app(web_engine, WebConfig(tokens=(TOKEN,)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        answer = client.post(f"/api/jobs/{later}/run-now", headers=BEARER)
        assert answer.status_code == 200, answer.text
        job = answer.json()
        assert (job["id"], job["status"]) == (later, "PENDING")
        assert web_engine.get(later).run_at <= time.time()
        assert run_now_events(web_engine, later) == [("run_now", "http-api")]
        assert client.post(f"/api/jobs/{later}/run-now", headers=BEARER).status_code == 200
        assert len(run_now_events(web_engine, later)) == 1  # already due: nothing changed
        web_engine.cancel(later)
        for path, status, words in [
            (f"/api/jobs/{later}/run-now", 409, "is CANCELED; only a PENDING job"),
            ("/api/jobs/424242/run-now", 404, "no job has id"),
            ("/api/jobs/abc/run-now", 404, "no job has id 'abc'"),
            ("/api/jobs/-1/run-now", 404, "no job has id"),
        ]:
            refused = client.post(path, headers=BEARER)
            assert refused.status_code == status, path
            assert words in refused.json()["error"]["message"], path
        assert client.post(f"/api/jobs/{later}/run-now").status_code == 401
        assert client.get(f"/api/jobs/{later}/run-now", headers=BEARER).status_code == 405
