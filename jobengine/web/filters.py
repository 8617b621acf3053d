"""Job listings: filters from the query string, keyset pages, and safe ids, text and numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

from jobengine.model import Job, Status
from jobengine.representation import parse_timestamp
from jobengine.store.listing import JobQueries, JobSearch

MAX_ID = 2**63 - 1  # the largest id either database can store
MAX_INT32 = 2**31 - 1  # priority and attempts are 32-bit columns on PostgreSQL
MAX_TEXT = 1000
MAX_LIMIT = 500
RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_HELP = "an RFC 3339 time with offset (2026-01-31T09:00:00+00:00) or an age such as 15m, 2h, 7d"


def bad_request(message: str) -> HTTPException:
    return HTTPException(400, message)


def text_value(name: str, value: str, limit: int = MAX_TEXT) -> str:
    """Text a database can store: no NUL character, no lone surrogate, not too long."""
    if "\x00" in value:
        raise bad_request(f"{name} contains a NUL character; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{name} is not valid UTF-8 text") from None
    if len(value) > limit:
        raise bad_request(f"{name} is longer than {limit} characters")
    return value


def whole(name: str, text: str, low: int, high: int) -> int:
    """A whole number in [low, high] given as text, or 400 naming the range."""
    if not re.fullmatch(r"\s*[+-]?\d{1,20}\s*", text) or not low <= int(text) <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def job_id_or_none(text: str) -> int | None:
    """A path segment as a job id; None when it cannot be one (the caller answers 404)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_ID:
        return None
    return int(text)


def moment(name: str, text: str, now: float) -> float:
    """A time from the query string: RFC 3339, or an age ('15m' = fifteen minutes ago)."""
    relative = RELATIVE.match(text)
    if relative:
        return now - int(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    try:
        value = parse_timestamp(text)
    except (ValueError, OverflowError):
        raise bad_request(f"{name}={text!r} is not a time; use {TIME_HELP}") from None
    return value


def statuses(values: list[str]) -> tuple[Status, ...]:
    """Statuses from repeated or comma-separated parameters, any case."""
    found: list[Status] = []
    for value in values:
        for part in (piece.strip() for piece in value.split(",")):
            if not part:
                continue
            try:
                status = Status(part.upper())
            except ValueError:
                raise bad_request(
                    f"unknown status {part!r}; use one of {', '.join(s.value for s in Status)}"
                ) from None
            if status not in found:
                found.append(status)
    return tuple(found)


@dataclass(frozen=True)
class JobFilter:
    """What a jobs listing shows; `query()` gives it back as a stable query string."""

    status: tuple[Status, ...] = ()
    type: str | None = None
    queue: str | None = None
    worker: str | None = None
    since: str | None = None
    until: str | None = None
    q: str | None = None
    limit: int = 50
    after: int | None = None
    before: int | None = None
    created_from: float | None = None
    created_until: float | None = None

    @property
    def active(self) -> bool:
        """True when anything narrows the listing."""
        return bool(self.status or self.type or self.queue or self.worker or self.q) or bool(
            self.since or self.until
        )

    def describe(self) -> str:
        """The filter in words: 'type "report", created since "1h"' ('' when none)."""
        parts = (
            [f"status {' or '.join(status.value for status in self.status)}"] if self.status else []
        )
        labels = (
            ("type", "type"),
            ("queue", "queue"),
            ("worker", "worker"),
            ("since", "created since"),
            ("until", "created before"),
            ("q", "matching"),
        )
        parts += [
            f'{label} "{getattr(self, name)}"' for name, label in labels if getattr(self, name)
        ]
        return ", ".join(parts)

    def search(
        self,
        status: tuple[Status, ...] | None = None,
        after: int | None = None,
        before: int | None = None,
    ) -> JobSearch:
        """The jobs this filter means (of `status` instead of its own when given), for the
        store; pages by `after` / `before` only when given."""
        return JobSearch(
            self.status if status is None else status,
            self.type,
            self.queue,
            self.worker,
            self.created_from,
            self.created_until,
            self.q,
            after,
            before,
        )

    def query(self, **changes: object) -> str:
        """The filter as a query string (pagination cursors only when given in `changes`)."""
        current = replace(self, after=None, before=None)
        current = replace(current, **changes)  # type: ignore[arg-type]
        pairs: list[tuple[str, str]] = [("status", status.value) for status in current.status]
        for name in ("type", "queue", "worker", "since", "until", "q"):
            value = getattr(current, name)
            if value:
                pairs.append((name, value))
        if current.limit != JobFilter.limit:
            pairs.append(("limit", str(current.limit)))
        for name in ("after", "before"):
            if getattr(current, name) is not None:
                pairs.append((name, str(getattr(current, name))))
        return urlencode(pairs)


def parse_filter(params: QueryParams, now: float) -> JobFilter:
    """A JobFilter from the query string, or 400 naming the parameter that is wrong."""
    texts: dict[str, str | None] = {}
    for name in ("type", "queue", "worker", "since", "until", "q"):
        value = params.get(name)
        texts[name] = text_value(name, value).strip() or None if value is not None else None
    limit = whole("limit", params["limit"], 1, MAX_LIMIT) if params.get("limit") else 50
    after = whole("after", params["after"], 0, MAX_ID) if params.get("after") else None
    before = whole("before", params["before"], 0, MAX_ID) if params.get("before") else None
    since, until = texts["since"], texts["until"]
    return JobFilter(
        status=statuses([text_value("status", v) for v in params.getlist("status")]),
        type=texts["type"],
        queue=texts["queue"],
        worker=texts["worker"],
        since=since,
        until=until,
        q=texts["q"],
        limit=limit,
        after=after,
        before=before,
        created_from=moment("since", since, now) if since else None,
        created_until=moment("until", until, now) if until else None,
    )


@dataclass(frozen=True)
class JobPage:
    """One page of a listing, newest first, with the cursors of the pages around it."""

    jobs: list[Job]
    older: int | None
    newer: int | None


def fetch_jobs(queries: JobQueries, wanted: JobFilter) -> JobPage:
    """The page `wanted` names; one extra row tells whether another page follows."""
    rows = queries.search(wanted.search(after=wanted.after, before=wanted.before), wanted.limit + 1)
    more = len(rows) > wanted.limit
    if wanted.before is not None and wanted.after is None:
        jobs = rows[1:] if more else rows  # the extra row is the newest one
        newer = jobs[0].id if more and jobs else None
        return JobPage(jobs, jobs[-1].id if jobs else None, newer)
    jobs = rows[: wanted.limit]
    older = jobs[-1].id if more and jobs else None
    newer = jobs[0].id if wanted.after is not None and jobs else None
    return JobPage(jobs, older, newer)
