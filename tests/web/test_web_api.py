"""The HTTP API, endpoint by endpoint: what each answers, and that bad input changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from conftest import TOKEN, csrf_token
from starlette.testclient import TestClient
from waiting import wait_for, wait_for_status, worker_thread

from jobengine import Engine, Status


def state(engine: Engine) -> list[tuple[int, str, int, int]]:
    """Every job's id, status, attempt and number of events: what must not change."""
    return [
        (job.id, job.status.value, job.attempt, len(engine.events(job.id)))
        for job in engine.list(limit=1000)
    ]


def post(client: TestClient, path: str, body: Any = None, **headers: str) -> Any:
    """A POST with this session's CSRF header (and a JSON body when one is given)."""
    sent = {"x-csrf-token": csrf_token(client), **headers}
    if body is None:
        return client.post(path, headers=sent)
    return client.post(
        path, content=json.dumps(body), headers={"content-type": "application/json", **sent}
    )


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message: str = response.json()["error"]["message"]
    assert message
    return message


def test_submit_then_get_the_same_job(client: TestClient, web_engine: Engine) -> None:
    response = post(
        client, "/api/jobs", {"type": "greet", "arguments": {"name": "web"}, "priority": 3}
    )
    assert response.status_code == 201
    job = response.json()
    assert response.headers["location"] == f"/api/jobs/{job['id']}"
    assert (job["type"], job["status"], job["arguments"], job["priority"]) == (
        "greet",
        "PENDING",
        {"name": "web"},
        3,
    )
    assert datetime.fromisoformat(job["created_at"]).utcoffset() is not None
    assert job["created_at"].endswith("+00:00")
    assert client.get(f"/api/jobs/{job['id']}").json() == job
    assert web_engine.get(job["id"]).args == {"name": "web"}


def test_submit_with_run_at_and_queue(client: TestClient, web_engine: Engine) -> None:
    body = {
        "type": "greet",
        "arguments": {"name": "x"},
        "run_at": "2031-01-02T03:04:05Z",
        "queue": "mail",
    }
    job = post(client, "/api/jobs", body).json()
    assert job["run_at"] == "2031-01-02T03:04:05.000+00:00"
    assert web_engine.get(job["id"]).queue == "mail"


BAD_SUBMITS = [
    ({"type": "no_such_type"}, 422, "no_such_type"),
    ({"type": "greet", "arguments": {"nom": "x"}}, 422, "name"),
    ({"type": "greet", "arguments": ["x"]}, 400, "arguments"),
    ({"arguments": {}}, 400, "type is required"),
    ({"type": "greet", "arguments": {"name": "x"}, "colour": 1}, 400, "colour"),
    ({"type": "greet", "arguments": {"name": "x"}, "priority": 2**40}, 400, "priority"),
    ({"type": "greet", "arguments": {"name": "x"}, "priority": True}, 400, "priority"),
    ({"type": "greet", "arguments": {"name": "x"}, "run_at": "2031-01-02T03:04:05"}, 400, "offset"),
    ({"type": "greet", "arguments": {"name": "x"}, "run_at": "soon"}, 400, "run_at"),
    ({"type": "greet", "arguments": {"name": "x"}, "delay_seconds": -1}, 400, "delay_seconds"),
    ({"type": "greet", "arguments": {"name": "x"}, "parent": 99999}, 422, "99999"),
    ({"type": "greet", "arguments": {"name": "x"}, "queue": "a\u0000b"}, 400, "NUL"),
    ({"type": "greet", "arguments": {"name": "x"}, "max_attempts": 0}, 400, "max_attempts"),
]


def test_a_bad_submit_names_the_problem_and_stores_nothing(
    client: TestClient, web_engine: Engine
) -> None:
    for body, status, named in BAD_SUBMITS:
        message = error_of(post(client, "/api/jobs", body), status)
        assert named in message, (body, message)
    assert state(web_engine) == []


BAD_BODIES = [
    ("{not json", "application/json", 400),
    ('{"type": "greet", "arguments": {"name": NaN}}', "application/json", 400),
    ('["greet"]', "application/json", 400),
    ('{"type": "greet"}', "text/plain", 415),
    ("", "application/json", 400),
    ("[" * 100_000, "application/json", 400),
    ('{"type": "' + "x" * 1_100_000 + '"}', "application/json", 413),
]


def test_a_body_that_is_not_a_json_object_is_refused(
    client: TestClient, web_engine: Engine
) -> None:
    for content, content_type, status in BAD_BODIES:
        headers = {"content-type": content_type, "x-csrf-token": csrf_token(client)}
        error_of(client.post("/api/jobs", content=content, headers=headers), status)
    assert state(web_engine) == []


def test_list_filters_search_and_pages(client: TestClient, web_engine: Engine) -> None:
    ids = [web_engine.submit("greet", name=f"server-{n}") for n in range(5)]
    failed = web_engine.submit("fail")
    web_engine.cancel(failed)
    listed = client.get("/api/jobs", params={"limit": 2}).json()
    assert [job["id"] for job in listed["jobs"]] == [failed, ids[4]]
    older = client.get("/api/jobs", params={"limit": 2, "after": listed["next_after"]}).json()
    assert [job["id"] for job in older["jobs"]] == [ids[3], ids[2]]
    newer = client.get("/api/jobs", params={"limit": 2, "before": older["previous_before"]}).json()
    assert [job["id"] for job in newer["jobs"]] == [failed, ids[4]]
    by_status = client.get("/api/jobs?status=canceled").json()["jobs"]
    assert [job["id"] for job in by_status] == [failed]
    pending = client.get("/api/jobs?status=PENDING,QUEUED&type=greet").json()["jobs"]
    assert len(pending) == 5
    assert [j["id"] for j in client.get("/api/jobs?q=SERVER-3").json()["jobs"]] == [ids[3]]
    assert [j["id"] for j in client.get(f"/api/jobs?q={failed}").json()["jobs"]] == [failed]
    assert client.get("/api/jobs?q=100%25").json()["jobs"] == []
    assert len(client.get("/api/jobs?since=1h").json()["jobs"]) == 6
    assert client.get("/api/jobs?until=2000-01-01T00:00:00Z").json()["jobs"] == []


BAD_QUERIES = [
    ("status=DONE", "DONE"),
    ("limit=0", "limit"),
    ("limit=abc", "limit"),
    ("after=-1", "after"),
    ("after=99999999999999999999999", "after"),
    ("since=yesterday", "since"),
    ("type=a%00b", "NUL"),
]


def test_bad_list_parameters_are_named(client: TestClient) -> None:
    for query, named in BAD_QUERIES:
        assert named in error_of(client.get(f"/api/jobs?{query}"), 400), query


def test_unknown_job_ids_are_404_everywhere(client: TestClient) -> None:
    for job_id in ("999999", "abc", "99999999999999999999999999", "-1"):
        for suffix in ("", "/events", "/log", "/why"):
            error_of(client.get(f"/api/jobs/{job_id}{suffix}"), 404)
        for suffix in ("/cancel", "/rerun"):
            error_of(post(client, f"/api/jobs/{job_id}{suffix}"), 404)


def test_events_log_and_why_of_a_job_that_ran(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="log")
    with worker_thread(web_engine):
        wait_for_status(web_engine, job_id, {Status.SUCCESS})
    events = client.get(f"/api/jobs/{job_id}/events").json()["events"]
    assert [event["verb"] for event in events] == ["submit", "claim", "start", "finish"]
    assert events[-1]["to_status"] == "SUCCESS"
    log = client.get(f"/api/jobs/{job_id}/log").json()
    assert [line["text"].endswith("hello log") for line in log["lines"]] == [True]
    assert log["ended"] is True
    assert log["job_status"] == "SUCCESS"
    after = client.get(f"/api/jobs/{job_id}/log", params={"after": log["next_after"]}).json()
    assert after["lines"] == []
    assert after["next_after"] == log["next_after"]
    assert client.get(f"/api/jobs/{job_id}/log?level=ERROR").json()["lines"] == []
    assert "level" in error_of(client.get(f"/api/jobs/{job_id}/log?level=LOUD"), 400)
    why = client.get(f"/api/jobs/{job_id}/why").json()
    assert (why["job_id"], why["available"]) == (job_id, True)
    assert why["verdict"]["code"] == web_engine.why(job_id).code == "ended_success"


def test_cancel_a_pending_job_then_again(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    canceled = post(client, f"/api/jobs/{job_id}/cancel", {"reason": "not needed"})
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "CANCELED"
    last = web_engine.events(job_id)[-1]
    assert (last.actor, last.reason) == ("http-api", "not needed")
    before = state(web_engine)
    assert "already ended" in error_of(post(client, f"/api/jobs/{job_id}/cancel"), 409)
    assert "reason" in error_of(post(client, f"/api/jobs/{job_id}/cancel", {"reason": 5}), 400)
    assert state(web_engine) == before


def test_cancel_a_running_job_reaches_canceled(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("chatter", lines=1000, pause=0.05)
    with worker_thread(web_engine):
        wait_for_status(web_engine, job_id, {Status.RUNNING})
        assert post(client, f"/api/jobs/{job_id}/cancel").json()["status"] in (
            "TO_CANCEL",
            "CANCELED",
        )
        wait_for_status(web_engine, job_id, {Status.CANCELED})
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "CANCELED"


def test_rerun_only_an_ended_job(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="again")
    before = state(web_engine)
    assert "only ended jobs" in error_of(post(client, f"/api/jobs/{job_id}/rerun"), 409)
    assert state(web_engine) == before
    web_engine.cancel(job_id)
    rerun = post(client, f"/api/jobs/{job_id}/rerun")
    assert rerun.status_code == 201
    assert (rerun.json()["rerun_of"], rerun.json()["arguments"]) == (job_id, {"name": "again"})


def test_schedules_list_get_pause_resume_run_now(client: TestClient, web_engine: Engine) -> None:
    web_engine.schedules.add("nightly", "greet", "30 2 * * *", arguments={"name": "night"})
    listed = client.get("/api/schedules").json()["schedules"]
    assert [(s["name"], s["description"], s["enabled"]) for s in listed] == [
        ("nightly", "at 02:30 every day", True)
    ]
    one = client.get("/api/schedules/nightly").json()
    assert len(one["next_fire_times"]) == 5
    assert one["last_run"] is None
    assert post(client, "/api/schedules/nightly/pause").json()["enabled"] is False
    assert web_engine.schedules.get("nightly").enabled is False
    assert post(client, "/api/schedules/nightly/resume").json()["enabled"] is True
    run = post(client, "/api/schedules/nightly/run-now")
    assert run.status_code == 201
    assert run.json()["schedule"] == "nightly"
    assert client.get("/api/schedules/nightly").json()["last_run"]["job_id"] == run.json()["id"]
    error_of(client.get("/api/schedules/missing"), 404)
    error_of(post(client, "/api/schedules/missing/pause"), 404)
    error_of(post(client, "/api/schedules/nightly/explode"), 404)


def test_workers_list_and_drain(client: TestClient, web_engine: Engine) -> None:
    assert client.get("/api/workers").json() == {"workers": []}
    with worker_thread(web_engine, heartbeat_interval=0.1) as worker:
        listed = wait_for(lambda: client.get("/api/workers").json()["workers"])
        assert listed[0]["id"] == worker.id
        assert listed[0]["state"] == "alive"
        drained = post(client, f"/api/workers/{worker.id}/drain")
        assert drained.status_code == 202
        wait_for(lambda: worker.stopping.is_set(), what="the worker to drain")
    stopped = client.get("/api/workers?include_stopped=true").json()["workers"]
    assert stopped[0]["state"] == "stopped"
    error_of(post(client, "/api/workers/nobody:1:x/drain"), 404)
    error_of(client.get("/api/workers?include_stopped=maybe"), 400)


def test_overview_and_doctor(client: TestClient, web_engine: Engine) -> None:
    web_engine.submit("greet", name="x")
    overview = client.get("/api/overview").json()
    assert overview["counts"]["PENDING"] == 1
    assert len(overview["finished_per_minute"]) == 60
    assert overview["oldest_due_job"]["type"] == "greet"
    assert overview["live_workers"] == 0
    doctor = client.get("/api/doctor").json()
    assert doctor["available"] is True  # the engine's doctor (jobengine/doctor.py)
    assert {"name": "workers", "level": "FAIL"}.items() <= next(
        c for c in doctor["checks"] if c["name"] == "workers"
    ).items()


def test_wrong_method_is_405_json(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    assert "DELETE" in error_of(client.delete("/api/jobs"), 405)
    assert "GET" in error_of(client.get(f"/api/jobs/{job_id}/cancel"), 405)
    assert web_engine.get(job_id).status is Status.PENDING


def test_a_change_without_csrf_token_is_refused(client: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    before = state(web_engine)
    assert "CSRF" in error_of(client.post(f"/api/jobs/{job_id}/cancel"), 403)
    wrong = {"x-csrf-token": "0" * 64}
    assert "CSRF" in error_of(client.post(f"/api/jobs/{job_id}/cancel", headers=wrong), 403)
    body = json.dumps({"type": "greet", "arguments": {"name": "y"}})
    refused = client.post("/api/jobs", content=body, headers={"content-type": "application/json"})
    error_of(refused, 403)
    assert state(web_engine) == before


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_crash(
    client: TestClient, web_engine: Engine
) -> None:
    job_id = web_engine.submit("greet", name="x")
    foreign = {"x-csrf-token": "ü".encode()}  # a header's bytes, read by the server as Latin-1
    assert "CSRF" in error_of(client.post(f"/api/jobs/{job_id}/cancel", headers=foreign), 403)
    assert web_engine.get(job_id).status is Status.PENDING


def test_a_lone_surrogate_written_by_another_program_is_shown_not_a_crash(
    client: TestClient, web_engine: Engine
) -> None:
    job_id = web_engine.submit("greet", name="x")
    with web_engine.store.database.transaction() as transaction:  # JSON that no UTF-8 can hold
        transaction.execute(
            "UPDATE jobs SET args = ?, result = ? WHERE id = ?",
            ('{"name": "\\ud800"}', '"\\udfff"', job_id),
        )
    listed = client.get("/api/jobs")
    assert listed.status_code == 200, listed.text
    assert listed.json()["jobs"][0]["arguments"] == {"name": "\ud800"}
    for path in (f"/api/jobs/{job_id}", "/jobs", f"/jobs/{job_id}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
    assert "\\ud800" in client.get(f"/jobs/{job_id}").text


def test_with_auth_on_a_token_is_required(secured: TestClient, web_engine: Engine) -> None:
    job_id = web_engine.submit("greet", name="x")
    assert "Bearer" in error_of(secured.get("/api/jobs"), 401)
    assert error_of(secured.get("/api/jobs", headers={"authorization": "Bearer nope"}), 401)
    assert error_of(secured.get("/metrics"), 401)
    before = state(web_engine)
    error_of(secured.post(f"/api/jobs/{job_id}/cancel"), 401)
    error_of(secured.post(f"/api/jobs/{job_id}/cancel", headers={"authorization": "Basic x"}), 401)
    assert state(web_engine) == before
    token = {"authorization": f"Bearer {TOKEN}"}
    assert secured.get("/api/jobs", headers=token).json()["jobs"][0]["id"] == job_id
    assert secured.post(f"/api/jobs/{job_id}/cancel", headers=token).json()["status"] == "CANCELED"
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/api/openapi.json").status_code == 200


def test_read_only_refuses_every_change(web_engine: Engine) -> None:
    from jobengine.web import WebConfig, create_app

    job_id = web_engine.submit("greet", name="x")
    web_engine.schedules.add("hourly", "greet", "0 * * * *", arguments={"name": "h"})
    app = create_app(web_engine, WebConfig(read_only=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        before = state(web_engine)
        for path in (
            f"/api/jobs/{job_id}/cancel",
            f"/api/jobs/{job_id}/rerun",
            "/api/schedules/hourly/pause",
        ):
            assert "read-only" in error_of(post(client, path), 403)
        assert "read-only" in error_of(post(client, "/api/jobs", {"type": "greet"}), 403)
        assert state(web_engine) == before
        assert web_engine.schedules.get("hourly").enabled
        assert client.get(f"/api/jobs/{job_id}").status_code == 200


def test_healthz_and_metrics(client: TestClient, web_engine: Engine) -> None:
    with worker_thread(web_engine):
        job_id = web_engine.submit("greet", name="y")
        wait_for_status(web_engine, job_id, {Status.SUCCESS})
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        web_engine.submit("greet", name="x", queue="mail", delay=3600)
        text = client.get("/metrics").text
    assert 'jobengine_jobs{queue="mail",status="PENDING"} 1.0' in text
    assert 'jobengine_jobs_ended_total{status="SUCCESS"} 1.0' in text
    assert 'jobengine_workers{state="alive"} 1.0' in text
    assert "jobengine_oldest_waiting_job_age_seconds" in text
    assert 'jobengine_job_duration_seconds_bucket{le="+Inf"} 1.0' in text


def test_openapi_document_lists_every_api_route(client: TestClient) -> None:
    from starlette.routing import Route

    from jobengine.web.app import api_routes

    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = set()
    for route in api_routes():
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD" and route.path != "/api/openapi.json":
                served.add((method, route.path))
    expanded = {
        (method, path)
        for method, path in documented
        if not path.startswith(("/api/schedules/{name}/", "/api/workers/{worker_id}/"))
    }
    assert (
        served
        - {("POST", "/api/schedules/{name}/{action:str}")}
        - {("POST", "/api/workers/{worker_id}/{action:str}")}
        == expanded
    )
    assert ("POST", "/api/jobs") in documented
    assert ("POST", "/api/schedules/{name}/run-now") in documented
    assert ("POST", "/api/jobs/{job_id}/run-now") in documented
    assert ("POST", "/api/jobs/bulk") in documented
