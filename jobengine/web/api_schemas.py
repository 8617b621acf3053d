"""The schemas of the HTTP API's objects (jobs, events, schedules...) for its OpenAPI document."""

from __future__ import annotations

from typing import Any

from jobengine.model import Status

Schema = dict[str, Any]
TIME: Schema = {"type": "string", "format": "date-time"}
ANY: Schema = {}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def record(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "required": sorted(properties), "properties": properties}


STATUS: Schema = {"type": "string", "enum": [status.value for status in Status]}
TEXT, INTEGER, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}
BOOLEAN, OBJECT = {"type": "boolean"}, {"type": "object", "additionalProperties": True}
N_TEXT, N_INTEGER, N_NUMBER, N_TIME = (nullable(s) for s in (TEXT, INTEGER, NUMBER, TIME))

JOB = record(
    {
        "id": INTEGER,
        "url": N_TEXT,
        "type": TEXT,
        "queue": TEXT,
        "priority": INTEGER,
        "status": STATUS,
        "terminal": BOOLEAN,
        "arguments": OBJECT,
        "attempt": INTEGER,
        "max_attempts": INTEGER,
        "timeout_seconds": N_NUMBER,
        "progress": N_NUMBER,
        "worker": N_TEXT,
        "parent": N_INTEGER,
        "rerun_of": N_INTEGER,
        "schedule": N_TEXT,
        **{name: N_TIME for name in ("fire_time", "created_at", "run_at", "queued_at")},
        **{name: N_TIME for name in ("started_at", "finished_at", "heartbeat_at")},
        "cancel_requested_at": N_TIME,
        "waited_seconds": N_NUMBER,
        "ran_seconds": N_NUMBER,
        "result": ANY,
        "output": N_TEXT,
        "errors": N_TEXT,
    }
)
EVENT = record(
    {
        "id": INTEGER,
        "job_id": INTEGER,
        "at": TIME,
        "verb": TEXT,
        "from_status": nullable(STATUS),
        "to_status": STATUS,
        "actor": TEXT,
        "reason": N_TEXT,
        "attempt": INTEGER,
    }
)
LOG_LINE = record(
    {"id": INTEGER, "job_id": INTEGER, "attempt": INTEGER, "at": TIME, "level": TEXT, "text": TEXT}
)
RUN = nullable(
    record(
        {"job_id": INTEGER, "status": STATUS, "fire_time": N_TIME}
        | {"created_at": TIME, "finished_at": N_TIME}
    )
)
SCHEDULE = record(
    {
        "name": TEXT,
        "type": TEXT,
        "arguments": OBJECT,
        "expression": N_TEXT,
        "every_seconds": N_NUMBER,
        "description": TEXT,
        "timezone": TEXT,
        "enabled": BOOLEAN,
        "missed": TEXT,
        "missed_window_seconds": NUMBER,
        "overlap": TEXT,
        "queue": N_TEXT,
        "priority": N_INTEGER,
        "origin": TEXT,
        "last_fire_time": N_TIME,
        "next_fire_time": N_TIME,
        "next_fire_times": {"type": "array", "items": N_TIME},
        "last_run": RUN,
        "created_at": TIME,
        "updated_at": TIME,
    }
)
WORKER = record(
    {
        "id": TEXT,
        "host": TEXT,
        "pid": INTEGER,
        "state": {"type": "string", "enum": ["alive", "draining", "dead", "stopped"]},
        "queues": {"type": "array", "items": TEXT},
        "concurrency": INTEGER,
        "running_jobs": INTEGER,
        "version": TEXT,
        "started_at": TIME,
        "heartbeat_at": TIME,
        "stopped_at": N_TIME,
        "age_seconds": NUMBER,
        "heartbeat_age_seconds": NUMBER,
        "request": N_TEXT,
    }
)
CHECK = record(
    {
        "name": TEXT,
        "level": {"type": "string", "enum": ["OK", "WARN", "FAIL"]},
        "message": TEXT,
        "fix": N_TEXT,
    }
)
ERROR = record({"error": record({"status": INTEGER, "message": TEXT})})
SUBMIT = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "minLength": 1, "description": "a registered job type"},
        "arguments": nullable(OBJECT),
        "queue": nullable({"type": "string", "minLength": 1, "maxLength": 200}),
        "priority": nullable({"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}),
        "run_at": N_TIME,
        "delay_seconds": nullable({"type": "number", "minimum": 0, "maximum": 315360000}),
        "max_attempts": nullable({"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
        "timeout_seconds": nullable({"type": "number", "minimum": 0.001, "maximum": 315360000}),
        "parent": nullable({"type": "integer", "minimum": 1}),
    },
}
CANCEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": {"type": "string", "maxLength": 1000}},
}
BULK = {
    "type": "object",
    "required": ["action"],
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "enum": ["cancel", "rerun"]},
        "reason": {"type": "string", "maxLength": 1000, "description": "why (cancel only)"},
        "dry_run": {"type": "boolean", "description": "only count the jobs it would change"},
        "upto": {
            "type": "integer",
            "minimum": 0,
            "description": "act on jobs up to this id only (the upto of a dry run)",
        },
    },
}
SCHEMAS = {
    "Job": JOB,
    "Event": EVENT,
    "LogLine": LOG_LINE,
    "Schedule": SCHEDULE,
    "Worker": WORKER,
    "Check": CHECK,
    "Error": ERROR,
    "Submit": SUBMIT,
    "Cancel": CANCEL,
    "Bulk": BULK,
}
