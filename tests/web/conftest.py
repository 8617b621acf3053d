"""Fixtures of the dashboard tests: an engine with job types, and clients of its web app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from jobengine import Engine, JobContext
from jobengine.web import WebConfig, create_app

PASSWORD = "correct horse #/? battery"
TOKEN = "token-for-tests-1234567890"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def register_jobs(engine: Engine) -> Engine:
    """The job types the dashboard tests submit."""

    @engine.job
    def greet(ctx: JobContext, name: str) -> str:
        ctx.log.info("hello %s", name)
        return f"hello {name}"

    @engine.job
    def chatter(ctx: JobContext, lines: int = 1000, pause: float = 0.2) -> str:
        for number in range(lines):
            ctx.log.info("line %s of %s", number + 1, lines)
            ctx.sleep(pause)  # wakes at once on cancel
        return "done"

    @engine.job
    def fail(ctx: JobContext) -> None:
        raise RuntimeError("it broke")

    return engine


@pytest.fixture
def web_engine(database_url: str) -> Iterator[Engine]:
    engine = register_jobs(Engine(database_url))
    yield engine
    engine.close()


def csrf_token(client: TestClient) -> str:
    """The CSRF token of the client's session, as a page shows it."""
    match = CSRF.search(client.get("/jobs").text)
    assert match, "the jobs page carries no CSRF token"
    return match.group(1)


@pytest.fixture
def client(web_engine: Engine) -> Iterator[TestClient]:
    """A client of a dashboard without authentication (as on 127.0.0.1)."""
    with TestClient(create_app(web_engine, WebConfig()), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def secured_config() -> WebConfig:
    return WebConfig(host="0.0.0.0", password=PASSWORD, tokens=(TOKEN,))


@pytest.fixture
def secured(web_engine: Engine, secured_config: WebConfig) -> Iterator[TestClient]:
    """A client of a dashboard with a password and a bearer token configured."""
    app = create_app(web_engine, secured_config)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
