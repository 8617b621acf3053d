"""Bulk actions: cancel or rerun the ticked jobs, or every job a filter matches (bounded)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.exceptions import HTTPException

from jobengine.engine import Engine
from jobengine.errors import JobEngineError
from jobengine.model import TERMINAL, Status
from jobengine.store.listing import JobQueries
from jobengine.web.filters import JobFilter

MAX_SELECTED = 500  # ticked jobs at once
MOST_MATCHING = 10_000  # jobs one "all matching" action changes at most
BATCH = 500  # jobs read from the database at a time while acting on all matching
MOST_REFUSALS_SHOWN = 5
ACTIONS: dict[str, tuple[Status, ...]] = {
    "cancel": (Status.PENDING, Status.QUEUED, Status.RUNNING),
    "rerun": tuple(sorted(TERMINAL)),
}
VERBS = {"cancel": "canceled (or asked to stop)", "rerun": "started again as new jobs"}


def check_action(action: object) -> str:
    if not isinstance(action, str) or action not in ACTIONS:
        raise HTTPException(400, "action must be 'cancel' or 'rerun'")
    return str(action)


@dataclass
class Outcome:
    """What a bulk action did: how many jobs it changed, the new jobs of a rerun, refusals."""

    action: str
    done: int = 0
    new_jobs: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def sentence(self) -> str:
        message = f"{self.done:,} job(s) {VERBS[self.action]}"
        if self.refused:
            shown = "; ".join(
                f"job {job_id}: {why}" for job_id, why in self.refused[:MOST_REFUSALS_SHOWN]
            )
            more = len(self.refused) - MOST_REFUSALS_SHOWN
            message += f"; {len(self.refused):,} refused: {shown}"
            message += f" and {more:,} more" if more > 0 else ""
        return message


def act(engine: Engine, outcome: Outcome, job_id: int, actor: str, reason: str | None) -> None:
    """Cancel or rerun one job, counting it as done or refused."""
    try:
        if outcome.action == "cancel":
            engine.cancel(job_id, actor, reason)
        else:
            outcome.new_jobs.append(engine.rerun(job_id, actor))
        outcome.done += 1
    except JobEngineError as error:
        outcome.refused.append((job_id, str(error)))


def act_on_each(engine: Engine, action: str, ids: list[int], actor: str) -> Outcome:
    outcome = Outcome(action)
    for job_id in ids:
        act(engine, outcome, job_id, actor, None)
    return outcome


@dataclass(frozen=True)
class Matching:
    """The jobs an action would change among those a filter matches: those in a status the
    action applies to, up to the newest (`upto`) when it was counted."""

    action: str
    filter: JobFilter
    statuses: tuple[Status, ...]
    count: int  # counted up to MOST_MATCHING + 1
    upto: int | None

    @property
    def too_many(self) -> bool:
        return self.count > MOST_MATCHING

    def problem(self) -> str | None:
        """Why the action cannot go ahead, naming the fix; None when it can."""
        if not self.statuses:
            allowed = ", ".join(status.value for status in ACTIONS[self.action])
            return f"no job can {self.action} in the statuses filtered on; {allowed} can"
        if self.too_many:
            return (
                f"more than {MOST_MATCHING:,} jobs match, more than one action may change; narrow"
                " the filter (by type, queue or creation time: since, until) and act on each part"
            )
        if self.count == 0:
            return f"no job matching this filter can {self.action}"
        return None


def matching(
    queries: JobQueries, wanted: JobFilter, action: str, upto: int | None = None
) -> Matching:
    """Count what `action` would change among the jobs `wanted` matches (newest: `upto`)."""
    statuses = tuple(s for s in (wanted.status or ACTIONS[action]) if s in ACTIONS[action])
    if not statuses:
        return Matching(action, wanted, statuses, 0, upto)
    if upto is None:
        newest = queries.search(wanted.search(status=statuses), 1)
        upto = newest[0].id if newest else None
    if upto is None:
        return Matching(action, wanted, statuses, 0, None)
    search = wanted.search(status=statuses, after=upto + 1)
    return Matching(action, wanted, statuses, queries.count(search, MOST_MATCHING + 1), upto)


def act_on_matching(
    engine: Engine, queries: JobQueries, found: Matching, actor: str, reason: str | None
) -> Outcome:
    """Cancel or rerun what `found` counted, newest first, BATCH jobs read at a time; never
    more than MOST_MATCHING, whatever changed since the count."""
    problem = found.problem()
    if problem is not None or found.upto is None:
        raise HTTPException(422, problem or "nothing to do")
    outcome = Outcome(found.action)
    cursor = found.upto + 1
    while outcome.done + len(outcome.refused) < MOST_MATCHING:
        room = MOST_MATCHING - outcome.done - len(outcome.refused)
        batch = queries.search(found.filter.search(status=found.statuses, after=cursor), BATCH)
        for job in batch[:room]:
            act(engine, outcome, job.id, actor, reason)
        if len(batch) < BATCH:
            break
        cursor = batch[-1].id
    return outcome
