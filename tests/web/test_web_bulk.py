"""Cancel or rerun every job a filter matches: the jobs page's confirmation, and the API."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from conftest import TOKEN, csrf_token
from starlette.testclient import TestClient

from jobengine import Engine, Status
from jobengine.web import WebConfig, bulk, create_app

REGION = {"hx-request": "true", "hx-target": "bulk-confirm"}
BEARER = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}


def state(engine: Engine) -> list[tuple[int, str, int]]:
    return [(j.id, j.status.value, len(engine.events(j.id))) for j in engine.list(limit=1000)]


def some_jobs(engine: Engine) -> tuple[list[int], list[int]]:
    """Five jobs in the default queue and two in 'mail', all PENDING."""
    default = [engine.submit("greet", name=str(n)) for n in range(5)]
    mail = [engine.submit("greet", name="m", queue="mail") for _ in range(2)]
    return default, mail


def statuses(engine: Engine, ids: list[int]) -> set[Status]:
    return {engine.get(job_id).status for job_id in ids}


def confirm_form(text: str) -> dict[str, str]:
    """The hidden fields of the confirmation's form."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', text))


def test_cancel_all_matching_asks_first_then_leaves_newer_jobs_alone(
    client: TestClient, web_engine: Engine
) -> None:
    default, mail = some_jobs(web_engine)
    page = client.get("/jobs?queue=default").text
    assert 'href="/jobs/matching?action=cancel&amp;queue=default"' in page
    assert 'id="bulk-confirm"' in page
    question = client.get("/jobs/matching?action=cancel&queue=default", headers=REGION)
    assert question.text.lstrip().startswith('<div id="bulk-confirm"')
    assert "data-holds-live" in question.text  # the live refresh leaves it open
    assert '<strong id="matching-count">5</strong>' in question.text
    assert 'with queue "default"' in html.unescape(question.text)
    form = confirm_form(question.text)
    assert (form["scope"], form["action"], form["upto"]) == ("matching", "cancel", str(default[-1]))
    assert 'hx-post="/jobs/bulk?queue=default"' in question.text
    assert statuses(web_engine, default + mail) == {Status.PENDING}  # asking changed nothing
    newer = web_engine.submit("greet", name="newer")
    done = client.post("/jobs/bulk?queue=default", data=form, headers=REGION)
    assert "5 job(s) canceled" in done.text
    assert done.text.lstrip().startswith('<div id="jobs"')
    assert statuses(web_engine, default) == {Status.CANCELED}
    assert statuses(web_engine, [*mail, newer]) == {Status.PENDING}
    again = client.get("/jobs/matching?action=rerun&status=CANCELED", headers=REGION)
    assert '<strong id="matching-count">5</strong>' in again.text
    rerun = client.post("/jobs/bulk?status=CANCELED", data=confirm_form(again.text))
    assert rerun.status_code == 200
    assert len(web_engine.list(status="PENDING", queue="default")) == 6


def test_all_matching_goes_in_batches(
    client: TestClient, web_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, mail = some_jobs(web_engine)
    monkeypatch.setattr(bulk, "BATCH", 2)
    form = {"csrf_token": csrf_token(client), "scope": "matching", "action": "cancel"}
    done = client.post("/jobs/bulk", data=form, headers=REGION)  # no upto: all there are now
    assert "7 job(s) canceled" in done.text
    assert statuses(web_engine, default + mail) == {Status.CANCELED}


def test_more_than_the_most_is_refused_with_the_fix(
    client: TestClient, web_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_jobs(web_engine)
    monkeypatch.setattr(bulk, "MOST_MATCHING", 3)
    before = state(web_engine)
    question = client.get("/jobs/matching?action=cancel", headers=REGION).text
    assert "more than 3 jobs match" in question and "narrow the filter" in question
    assert 'id="confirm-matching"' not in question
    form = {"csrf_token": csrf_token(client), "scope": "matching", "action": "cancel"}
    refused = client.post("/jobs/bulk", data=form, headers=REGION)
    assert "more than 3 jobs match" in refused.text
    assert state(web_engine) == before


def test_nothing_to_do_and_bad_input(client: TestClient, web_engine: Engine) -> None:
    some_jobs(web_engine)
    before = state(web_engine)
    ended = client.get("/jobs/matching?action=cancel&status=SUCCESS", headers=REGION).text
    assert "no job can cancel in the statuses filtered on" in ended
    none = client.get("/jobs/matching?action=rerun&queue=default", headers=REGION).text
    assert "no job matching this filter can rerun" in none
    whole = client.get("/jobs/matching?action=cancel&type=greet")
    assert "<h1>Cancel all matching jobs</h1>" in whole.text  # without htmx: a page of its own
    assert client.get("/jobs/matching?action=delete").status_code == 400
    assert client.get("/jobs/matching?action=cancel&status=NOPE").status_code == 400
    form = {"csrf_token": csrf_token(client), "scope": "matching", "action": "cancel"}
    assert client.post("/jobs/bulk", data={**form, "upto": "abc"}).status_code == 400
    assert client.post("/jobs/bulk", data={**form, "csrf_token": "x"}).status_code == 403
    assert state(web_engine) == before


def test_read_only_hides_and_refuses_all_matching(web_engine: Engine) -> None:
    some_jobs(web_engine)
    before = state(web_engine)
    app = create_app(web_engine, WebConfig(read_only=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert "all matching" not in client.get("/jobs").text
        assert client.get("/jobs/matching?action=cancel").status_code == 403
        form = {"csrf_token": csrf_token(client), "scope": "matching", "action": "cancel"}
        assert client.post("/jobs/bulk", data=form).status_code == 403
    assert state(web_engine) == before


@pytest.fixture
def api(web_engine: Engine) -> Any:
    with TestClient(create_app(web_engine, WebConfig(tokens=(TOKEN,)))) as client:
        yield client


def bulk_post(client: TestClient, query: str, body: Any) -> Any:
    return client.post(f"/api/jobs/bulk{query}", content=json.dumps(body), headers=BEARER)


def test_api_dry_run_then_cancel_then_rerun(api: TestClient, web_engine: Engine) -> None:
    default, mail = some_jobs(web_engine)
    dry = bulk_post(api, "?queue=default", {"action": "cancel", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "action": "cancel",
        "dry_run": True,
        "matching": 5,
        "upto": default[-1],
        "changed": 0,
        "refused": [],
        "new_jobs": [],
    }
    assert statuses(web_engine, default) == {Status.PENDING}
    upto = default[2]
    body = {"action": "cancel", "reason": "clean-up", "upto": upto}
    done = bulk_post(api, "?queue=default", body).json()
    assert (done["matching"], done["changed"]) == (3, 3)
    assert statuses(web_engine, default[:3]) == {Status.CANCELED}
    assert statuses(web_engine, default[3:] + mail) == {Status.PENDING}
    assert web_engine.events(default[0])[-1].reason == "clean-up"
    rerun = bulk_post(api, "?status=CANCELED", {"action": "rerun"}).json()
    assert rerun["changed"] == 3 and len(rerun["new_jobs"]) == 3
    assert {web_engine.get(new).rerun_of for new in rerun["new_jobs"]} == set(default[:3])


BAD_BULKS = [
    ("", {"action": "delete"}, 400, "action is required"),
    ("", {"action": ["cancel"]}, 400, "action is required"),
    ("", {}, 400, "action is required"),
    ("", {"action": "rerun", "reason": "r"}, 400, "only a cancel takes one"),
    ("", {"action": "cancel", "dry_run": "yes"}, 400, "dry_run"),
    ("", {"action": "cancel", "upto": -1}, 400, "upto"),
    ("", {"action": "cancel", "upto": True}, 400, "upto"),
    ("", {"action": "cancel", "colour": 1}, 400, "colour"),
    ("?limit=5", {"action": "cancel"}, 400, "takes no page"),
    ("?status=NOPE", {"action": "cancel"}, 400, "unknown status"),
    ("?since=yesterday", {"action": "cancel"}, 400, "since"),
]


def test_api_bad_bulk_input_changes_nothing(
    api: TestClient, web_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_jobs(web_engine)
    before = state(web_engine)
    for query, body, status, words in BAD_BULKS:
        refused = bulk_post(api, query, body)
        assert refused.status_code == status, (query, body, refused.text)
        assert words in refused.json()["error"]["message"], (query, body)
    empty = api.post("/api/jobs/bulk", headers=BEARER)
    assert empty.status_code == 400
    assert api.post("/api/jobs/bulk", content=b'{"action": "cancel"}').status_code == 401
    monkeypatch.setattr(bulk, "MOST_MATCHING", 3)
    too_many = bulk_post(api, "", {"action": "cancel"})
    assert too_many.status_code == 422
    assert "more than 3 jobs match" in too_many.json()["error"]["message"]
    assert state(web_engine) == before
