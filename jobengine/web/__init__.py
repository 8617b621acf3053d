"""The web dashboard and the HTTP API: `create_app(engine, config)` and `DashboardServer`."""

from __future__ import annotations

from jobengine.web.app import create_app
from jobengine.web.config import WebConfig, from_environment
from jobengine.web.server import DashboardServer

__all__ = ["DashboardServer", "WebConfig", "create_app", "from_environment"]
