"""Property tests of the HTTP API from its own OpenAPI document (schemathesis).

However malformed a request, the API answers with a documented status and body, never a 500;
and a request that reads, or that is refused, changes nothing in the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import TOKEN, register_jobs
from hypothesis import HealthCheck, settings
from schemathesis import checks

from jobengine import Engine
from jobengine.web import WebConfig, create_app
from jobengine.web.openapi import document

pytestmark = pytest.mark.timeout(120)
AUTHORIZED = {"authorization": f"Bearer {TOKEN}"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def database_state(engine: Engine) -> Any:
    """Everything a request could change: jobs, their events, schedules, worker requests."""
    jobs = engine.list(limit=10_000)
    return (
        [(job.id, job.status, job.attempt, job.run_at, len(engine.events(job.id))) for job in jobs],
        [(s.name, s.enabled, s.next_fire_time) for s in engine.schedules.list()],
        [(w.id, w.request, w.state) for w in engine.store.workers.find(include_stopped=True)],
    )


@pytest.fixture
def api_engine(database_url: str) -> Iterator[Engine]:
    """An engine with a few jobs in several statuses and one schedule."""
    engine = register_jobs(Engine(database_url))
    first = engine.submit("greet", name="one")
    engine.submit("greet", name="two", queue="mail")
    engine.cancel(engine.submit("fail"))
    engine.schedules.add("nightly", "greet", "30 2 * * *", arguments={"name": "night"})
    assert first == 1
    yield engine
    engine.close()


@pytest.fixture
def api_app(api_engine: Engine) -> Any:
    return create_app(api_engine, WebConfig(tokens=(TOKEN,)))


# The document is the one /api/openapi.json serves (a test in test_web_api compares them); each
# test calls its own app, built on its own database.
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_gets_a_500_or_changes_what_it_should_not(
    case: Any, api_engine: Engine, api_app: Any
) -> None:
    before = database_state(api_engine)
    response = case.call_and_validate(app=api_app, headers=AUTHORIZED, checks=CHECKS)
    if case.method.upper() == "GET" or response.status_code >= 400:
        assert database_state(api_engine) == before, (case.method, case.path, response.text)
