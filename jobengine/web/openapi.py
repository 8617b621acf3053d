"""The OpenAPI 3.0 document of the HTTP API, served at /api/openapi.json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from jobengine import __version__
from jobengine.web.api_schemas import (
    BOOLEAN,
    INTEGER,
    N_INTEGER,
    OBJECT,
    SCHEMAS,
    STATUS,
    TEXT,
    TIME,
    Schema,
    nullable,
    record,
    ref,
)
from jobengine.web.responses import JsonResponse

OVERVIEW = record(
    {
        "at": TIME,
        "counts": {"type": "object", "additionalProperties": INTEGER},
        "live_workers": INTEGER,
        "oldest_due_job": nullable(ref("Job")),
        "finished_per_minute": {
            "type": "array",
            "items": record(
                {"minute": TIME, "succeeded": INTEGER, "failed": INTEGER, "canceled": INTEGER}
            ),
        },
        "doctor_available": BOOLEAN,
        "checks": {"type": "array", "items": ref("Check")},
    }
)
REASONS = {
    "400": "bad input: the message names the parameter and the fix",
    "401": "authentication is on and no valid bearer token (or login) came with the request",
    "403": "read-only mode, or a missing CSRF token (send a bearer token instead)",
    "404": "no such job, schedule or worker",
    "409": "the job is not in a status that allows this (e.g. cancel of an ended job)",
    "413": "the body is larger than 1 MiB",
    "415": "the body is not application/json",
    "422": "understood but refused: unknown job type, arguments that do not fit it, a bulk"
    " action on more jobs than one may change",
}
READ_ERRORS = ("400", "401", "404")
WRITE_ERRORS = ("400", "401", "403", "404", "409", "413", "415", "422")


def reply(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def operation(
    name: str,
    summary: str,
    success: tuple[str, Schema],
    errors: tuple[str, ...],
    parameters: tuple[Schema, ...] = (),
    body: Schema | None = None,
) -> Schema:
    responses = {success[0]: reply("success", success[1])}
    responses.update({code: reply(REASONS[code], ref("Error")) for code in errors})
    found: Schema = {
        "operationId": name,
        "summary": summary,
        "parameters": list(parameters),
        "responses": responses,
    }
    if body is not None:
        found["requestBody"] = {
            "required": name in ("submitJob", "bulkJobs"),
            "content": {"application/json": {"schema": body}},
        }
    return found


def query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


JOB_ID = path("job_id", {"type": "integer", "minimum": 0})
NAME = path("name", {"type": "string", "minLength": 1})
WORKER_ID = path("worker_id", {"type": "string", "minLength": 1})
CURSOR = {"type": "integer", "minimum": 0}
FILTERS = (
    query("status", {"type": "array", "items": STATUS}, "statuses (repeat, or comma-separated)"),
    query("type", TEXT, "job type"),
    query("queue", TEXT, "queue"),
    query("worker", TEXT, "worker id"),
    query("since", TEXT, "created at or after: RFC 3339 time, or an age like 15m, 2h, 7d"),
    query("until", TEXT, "created before: RFC 3339 time, or an age"),
    query("q", TEXT, "free text: the id, or part of the type or of the arguments"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (50)"),
    query("after", CURSOR, "next (older) page: the next_after of the previous answer"),
    query("before", CURSOR, "previous (newer) page: the previous_before of an answer"),
)
BULK_RESULT = record(
    {
        "action": TEXT,
        "dry_run": BOOLEAN,
        "matching": INTEGER,
        "upto": N_INTEGER,
        "changed": INTEGER,
        "refused": {
            "type": "array",
            "items": record({"job_id": INTEGER, "message": TEXT}),
        },
        "new_jobs": {"type": "array", "items": INTEGER},
    }
)
LEVEL = {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]}
JOB_LIST = record(
    {
        "jobs": {"type": "array", "items": ref("Job")},
        "next_after": N_INTEGER,
        "previous_before": N_INTEGER,
    }
)
LOG_PAGE = record(
    {
        "job_id": INTEGER,
        "job_status": STATUS,
        "lines": {"type": "array", "items": ref("LogLine")},
        "next_after": INTEGER,
        "ended": BOOLEAN,
    }
)
WHY = record({"job_id": INTEGER, "available": BOOLEAN, "verdict": nullable(OBJECT)})
DOCTOR = record({"available": BOOLEAN, "checks": {"type": "array", "items": ref("Check")}})
WORKER_REQUEST = record({"worker_id": TEXT, "requested": TEXT})
LISTED = {
    "schedules": record({"schedules": {"type": "array", "items": ref("Schedule")}}),
    "workers": record({"workers": {"type": "array", "items": ref("Worker")}}),
    "events": record({"job_id": INTEGER, "events": {"type": "array", "items": ref("Event")}}),
}


def schedule_change(action: str, summary: str) -> Schema:
    success = ("201", ref("Job")) if action == "run-now" else ("200", ref("Schedule"))
    return {"post": operation(f"schedule-{action}", summary, success, WRITE_ERRORS, (NAME,))}


def worker_change(action: str, summary: str) -> Schema:
    success = ("202", WORKER_REQUEST)
    return {"post": operation(f"worker-{action}", summary, success, WRITE_ERRORS, (WORKER_ID,))}


PATHS = {
    "/api/jobs": {
        "get": operation("listJobs", "Jobs, newest first", ("200", JOB_LIST), READ_ERRORS, FILTERS),
        "post": operation(
            "submitJob", "Submit a job", ("201", ref("Job")), WRITE_ERRORS, body=ref("Submit")
        ),
    },
    "/api/jobs/bulk": {
        "post": operation(
            "bulkJobs",
            "Cancel or rerun every job the filters match (at most 10,000; dry_run counts them)",
            ("200", BULK_RESULT),
            WRITE_ERRORS,
            FILTERS[:7],
            ref("Bulk"),
        )
    },
    "/api/jobs/{job_id}": {
        "get": operation("getJob", "One job", ("200", ref("Job")), READ_ERRORS, (JOB_ID,))
    },
    "/api/jobs/{job_id}/events": {
        "get": operation(
            "jobEvents", "Its moves", ("200", LISTED["events"]), READ_ERRORS, (JOB_ID,)
        )
    },
    "/api/jobs/{job_id}/log": {
        "get": operation(
            "jobLog",
            "Its log lines after a cursor (follow with next_after)",
            ("200", LOG_PAGE),
            READ_ERRORS,
            (
                JOB_ID,
                query("after", CURSOR, "the id of the last line already read (0)"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "lines (1000)"),
                query("level", LEVEL, "the least level shown"),
            ),
        )
    },
    "/api/jobs/{job_id}/why": {
        "get": operation("jobWhy", "Why it is where it is", ("200", WHY), READ_ERRORS, (JOB_ID,))
    },
    "/api/jobs/{job_id}/cancel": {
        "post": operation(
            "cancelJob", "Cancel it", ("200", ref("Job")), WRITE_ERRORS, (JOB_ID,), ref("Cancel")
        )
    },
    "/api/jobs/{job_id}/rerun": {
        "post": operation("rerunJob", "Run it again", ("201", ref("Job")), WRITE_ERRORS, (JOB_ID,))
    },
    "/api/jobs/{job_id}/run-now": {
        "post": operation(
            "runJobNow",
            "Make a PENDING job that waits for a later time due now",
            ("200", ref("Job")),
            WRITE_ERRORS,
            (JOB_ID,),
        )
    },
    "/api/schedules": {
        "get": operation("listSchedules", "Schedules", ("200", LISTED["schedules"]), ("401",))
    },
    "/api/schedules/{name}": {
        "get": operation(
            "getSchedule", "One schedule", ("200", ref("Schedule")), READ_ERRORS, (NAME,)
        )
    },
    "/api/schedules/{name}/pause": schedule_change("pause", "Stop firing until resumed"),
    "/api/schedules/{name}/resume": schedule_change("resume", "Fire again"),
    "/api/schedules/{name}/run-now": schedule_change("run-now", "Run once, now"),
    "/api/workers": {
        "get": operation(
            "listWorkers",
            "Workers",
            ("200", LISTED["workers"]),
            ("400", "401"),
            (query("include_stopped", BOOLEAN, "also those that stopped"),),
        )
    },
    "/api/workers/{worker_id}/drain": worker_change("drain", "Finish its jobs, then stop"),
    "/api/workers/{worker_id}/restart": worker_change("restart", "Drain, then start again"),
    "/api/overview": {
        "get": operation("overview", "Counts, rates, health", ("200", OVERVIEW), ("401",))
    },
    "/api/doctor": {"get": operation("doctor", "Health checks", ("200", DOCTOR), ("401",))},
}


def document() -> Schema:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "jobengine",
            "version": __version__,
            "description": "Jobs, their events and logs, schedules and workers. Times are"
            " RFC 3339 with offset. Changes need a bearer token, or the dashboard session's"
            " X-CSRF-Token header.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


def openapi(request: Request) -> Response:
    return JsonResponse(document())
