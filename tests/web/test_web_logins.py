"""The limit on wrong passwords: per client address, a sliding minute, 429 with Retry-After."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PASSWORD
from starlette.applications import Starlette
from starlette.testclient import TestClient

from jobengine import Engine
from jobengine.web import WebConfig, create_app
from jobengine.web.logins import FAILURES, WINDOW, LoginLimiter

pytestmark = pytest.mark.timeout(60)


class Clock:
    """Seconds that only move when the test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(web_engine: Engine, secured_config: WebConfig, clock: Clock) -> Starlette:
    app = create_app(web_engine, secured_config)
    app.state.dashboard.logins = LoginLimiter(clock=clock)
    return app


def browser(app: Starlette, address: str) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1", client=(address, 40000)) as client:
        yield client


@pytest.fixture
def attacker(app: Starlette) -> Iterator[TestClient]:
    yield from browser(app, "203.0.113.7")


@pytest.fixture
def colleague(app: Starlette) -> Iterator[TestClient]:
    yield from browser(app, "198.51.100.20")


def log_in(client: TestClient, password: str) -> Any:
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/login").text)
    assert token
    form = {"csrf_token": token.group(1), "next": "/jobs", "password": password}
    return client.post("/login", data=form, follow_redirects=False)


def test_five_wrong_passwords_in_a_minute_wait_out_the_window(
    attacker: TestClient, colleague: TestClient, clock: Clock
) -> None:
    for _ in range(FAILURES):
        assert log_in(attacker, "guess").status_code == 401
        clock.now += 5
    refused = log_in(attacker, PASSWORD)  # even the right one: the address waits
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert wait == WINDOW - FAILURES * 5
    assert f"wait {wait} s, then try again" in refused.text
    assert "too many wrong passwords" in refused.text
    assert log_in(colleague, PASSWORD).status_code == 303
    clock.now += wait - 1
    assert log_in(attacker, PASSWORD).status_code == 429
    clock.now += 1
    entered = log_in(attacker, PASSWORD)
    assert entered.status_code == 303
    assert attacker.get("/jobs").status_code == 200


def test_failures_spread_over_more_than_a_minute_never_block(
    attacker: TestClient, clock: Clock
) -> None:
    for _ in range(3 * FAILURES):
        assert log_in(attacker, "guess").status_code == 401
        clock.now += WINDOW / (FAILURES - 1)


def test_a_right_password_clears_the_failures(attacker: TestClient, clock: Clock) -> None:
    for _ in range(FAILURES - 1):
        assert log_in(attacker, "guess").status_code == 401
    assert log_in(attacker, PASSWORD).status_code == 303
    for _ in range(FAILURES - 1):
        assert log_in(attacker, "guess").status_code == 401
    assert log_in(attacker, PASSWORD).status_code == 303


def test_the_limiter_forgets_old_addresses(clock: Clock) -> None:
    limiter = LoginLimiter(failures=2, window=10, clock=clock)
    for _ in range(3):
        limiter.failed("a")
    assert limiter.wait("a") == 10
    assert limiter.wait("b") == 0
    clock.now += 10
    assert limiter.wait("a") == 0
    assert limiter._failed == {}  # an address without recent failures takes no memory
