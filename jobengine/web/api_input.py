"""Reading API request bodies: size, media type, strict JSON, and the fields of a submit."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from jobengine.representation import parse_timestamp
from jobengine.web.filters import MAX_ID, MAX_INT32, text_value

MAX_BODY = 1024 * 1024
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: the latest time every part can show
LONGEST = 10 * 365 * 86400.0  # ten years: the longest delay or timeout accepted
SUBMIT_FIELDS = (
    "type",
    "arguments",
    "queue",
    "priority",
    "run_at",
    "delay_seconds",
    "max_attempts",
    "timeout_seconds",
    "parent",
)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_body(request: Request, required: bool) -> dict[str, Any] | None:
    """The body as a JSON object (None when it is empty and not required), or 400/413/415."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        if required:
            raise HTTPException(400, "send a JSON object as the body")
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPException(415, f"send the body as application/json, not {media or 'untyped'}")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, 'the body must be a JSON object, e.g. {"type": "greet"}')
    return body


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
    return value


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HTTPException(400, f"{name} must be a number of seconds")
    if not math.isfinite(value) or not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low:g} and {high:g} seconds")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HTTPException(400, f"{name} must be non-empty text")
    return text_value(name, value, 200)


def _run_at(value: Any) -> float:
    if not isinstance(value, str):
        raise HTTPException(400, "run_at must be an RFC 3339 time, e.g. 2026-01-31T09:00:00Z")
    try:
        moment = parse_timestamp(text_value("run_at", value))
    except (ValueError, OverflowError) as error:
        raise HTTPException(400, f"run_at is not an RFC 3339 time with offset: {error}") from None
    if not 0 <= moment <= LATEST:
        raise HTTPException(400, "run_at must lie between 1970 and 9999")
    return moment


def _options(present: dict[str, Any]) -> dict[str, Any]:
    """The optional fields given (not null), checked, under engine.submit's names."""
    checks: dict[str, tuple[str, Any]] = {
        "queue": ("queue", lambda value: _text("queue", value)),
        "priority": ("priority", lambda v: _whole("priority", v, -MAX_INT32 - 1, MAX_INT32)),
        "max_attempts": ("max_attempts", lambda v: _whole("max_attempts", v, 1, MAX_INT32)),
        "parent": ("parent", lambda value: _whole("parent", value, 1, MAX_ID)),
        "timeout_seconds": ("timeout", lambda v: _seconds("timeout_seconds", v, 0.001, LONGEST)),
        "run_at": ("run_at", _run_at),
        "delay_seconds": ("delay", lambda v: _seconds("delay_seconds", v, 0, LONGEST)),
    }
    if "run_at" in present and "delay_seconds" in present:
        raise HTTPException(400, "give run_at or delay_seconds, not both")
    return {
        name: check(present[field]) for field, (name, check) in checks.items() if field in present
    }


def submission(body: dict[str, Any] | None) -> dict[str, Any]:
    """engine.submit's options from a submit body (with 'type'), or 400 naming the field."""
    assert body is not None
    unknown = sorted(set(body) - set(SUBMIT_FIELDS))
    if unknown:
        raise HTTPException(
            400, f"unknown field(s) {unknown}; a submit takes {', '.join(SUBMIT_FIELDS)}"
        )
    if "type" not in body:
        raise HTTPException(400, 'type is required: the registered job type, e.g. "greet"')
    arguments = body.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        raise HTTPException(400, "arguments must be a JSON object of the job's arguments")
    present = {name: value for name, value in body.items() if value is not None}
    return {"type": _text("type", body["type"]), "arguments": arguments or {}, **_options(present)}
