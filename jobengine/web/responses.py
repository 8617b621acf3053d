"""Answers that are not pages: JSON bodies, and every error as a clear status and message."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from jobengine.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    IllegalMove,
    InvalidArguments,
    InvalidSchedule,
    JobEngineError,
    JobNotFound,
    MoveConflict,
    SchemaOutdated,
    UnknownJobType,
)
from jobengine.web.security import SESSION_KEY, is_machine_path

log = logging.getLogger("jobengine.web")
ERROR_STATUS: dict[type[JobEngineError], int] = {
    JobNotFound: 404,
    UnknownJobType: 422,
    InvalidArguments: 422,
    InvalidSchedule: 422,
    ConfigurationError: 422,
    IllegalMove: 409,
    MoveConflict: 409,
    DatabaseUnavailable: 503,
    SchemaOutdated: 503,
    JobEngineError: 409,
}
REASONS = {
    400: "bad request",
    401: "not logged in",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "too large",
    415: "unsupported media type",
    422: "not accepted",
    500: "internal error",
    503: "unavailable",
}


def finite(value: Any) -> Any:
    """The value with NaN and infinities replaced by null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


class JsonResponse(JSONResponse):
    """JSON that never fails to encode: non-finite numbers become null, other types text."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:
            text = json.dumps(finite(content), ensure_ascii=False, allow_nan=False, default=str)
        return text.encode("utf-8", "backslashreplace")  # a lone surrogate from another writer


def error_response(request: Request, status: int, message: str) -> Response:
    """JSON under /api and for machines; an HTML page (escaped) for people."""
    headers = {"allow": "GET, POST"} if status == 405 else None
    if is_machine_path(request.url.path):
        return JsonResponse({"error": {"status": status, "message": message}}, status, headers)
    if SESSION_KEY not in request.scope:
        return PlainTextResponse(message, status, headers)
    from jobengine.web.dashboard import dashboard_of

    dashboard = dashboard_of(request)
    response: HTMLResponse = dashboard.render(
        request,
        "error.html",
        status,
        status=status,
        reason=REASONS.get(status, "error"),
        problem=message,
        message=None,
    )
    if headers:
        response.headers.update(headers)
    return response


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = str(error.detail)
    if error.status_code == 404 and message == "Not Found":
        message = f"nothing is at {request.url.path}; the pages are listed at /"
    if error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(request, error.status_code, message)


async def engine_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, JobEngineError)
    status = next((code for kind, code in ERROR_STATUS.items() if isinstance(error, kind)), 409)
    return error_response(request, status, str(error))


async def server_error(request: Request, error: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    message = "unexpected error; the dashboard's log has the details"
    if is_machine_path(request.url.path):
        return JsonResponse({"error": {"status": 500, "message": message}}, 500)
    return PlainTextResponse(message, 500)


EXCEPTION_HANDLERS = {
    HTTPException: http_error,
    JobEngineError: engine_error,
    Exception: server_error,
}
