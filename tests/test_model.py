"""The move table: every move of the design is allowed, every other one raises IllegalMove."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobengine import IllegalMove, Job, Status
from jobengine.model import MOVES, TERMINAL, VERBS, check_move

P, Q, R, T, C = Status.PENDING, Status.QUEUED, Status.RUNNING, Status.TO_CANCEL, Status.CANCELED
S, W, F = Status.SUCCESS, Status.WARNING, Status.FAILURE

# The table of design.md, written out by hand so that the code is checked against the design.
DESIGN_MOVES = frozenset(
    {
        (P, Q, "claim"),
        (P, C, "cancel"),
        (Q, C, "cancel"),
        (Q, R, "start"),
        (Q, P, "release"),
        (R, S, "finish"),
        (R, W, "finish"),
        (R, F, "finish"),
        (R, T, "cancel"),
        (R, P, "retry"),
        (T, P, "retry"),
        (R, F, "reap"),
        (T, F, "reap"),
        (T, C, "cancel"),
        (T, S, "finish"),
        (T, W, "finish"),
        (T, F, "finish"),
    }
)
DESIGN_PAIRS = frozenset((source, target) for source, target, _ in DESIGN_MOVES)
ALL_VERBS = sorted(VERBS | {"claim", "cancel", "start", "release", "finish", "retry", "reap"})


def test_exactly_the_eight_statuses_of_the_design() -> None:
    assert [status.value for status in Status] == [
        "PENDING",
        "QUEUED",
        "RUNNING",
        "TO_CANCEL",
        "CANCELED",
        "SUCCESS",
        "WARNING",
        "FAILURE",
    ]
    assert {status for status in Status if status.terminal} == {C, S, W, F}
    assert frozenset({C, S, W, F}) == TERMINAL


@pytest.mark.parametrize(
    ("source", "target", "verb"), sorted(DESIGN_MOVES), ids=lambda value: str(value)
)
def test_every_move_of_the_design_is_allowed(source: Status, target: Status, verb: str) -> None:
    check_move(source, target, verb)


def test_the_code_table_is_the_design_table() -> None:
    code_moves = {(source, target, verb) for (source, target), verb in MOVES.items()}
    code_moves |= {(R, F, "reap"), (T, F, "reap")}
    assert code_moves == DESIGN_MOVES


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in itertools.product(Status, Status) if pair not in DESIGN_PAIRS],
    ids=str,
)
def test_every_other_pair_raises_for_every_verb(source: Status, target: Status) -> None:
    for verb in ALL_VERBS:
        with pytest.raises(IllegalMove, match=f"{source}.*{target}"):
            check_move(source, target, verb)


@pytest.mark.parametrize(("source", "target", "verb"), sorted(DESIGN_MOVES), ids=str)
def test_an_allowed_pair_with_the_wrong_verb_raises(
    source: Status, target: Status, verb: str
) -> None:
    right_verbs = {v for s, t, v in DESIGN_MOVES if (s, t) == (source, target)}
    for wrong in sorted(set(ALL_VERBS) - right_verbs):
        with pytest.raises(IllegalMove, match=f"not a '{wrong}'"):
            check_move(source, target, wrong)


@pytest.mark.parametrize("terminal", sorted(TERMINAL), ids=str)
def test_terminal_statuses_have_no_way_out(terminal: Status) -> None:
    assert not [pair for pair in MOVES if pair[0] == terminal]
    for target, verb in itertools.product(Status, ALL_VERBS):
        with pytest.raises(IllegalMove):
            check_move(terminal, target, verb)


def test_the_error_names_the_allowed_targets() -> None:
    with pytest.raises(IllegalMove, match=r"allowed from PENDING: \['CANCELED', 'QUEUED'\]"):
        check_move(P, R, "start")
    with pytest.raises(IllegalMove, match="allowed from SUCCESS: none"):
        check_move(S, P, "retry")


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(
    source=st.sampled_from(Status),
    target=st.sampled_from(Status),
    verb=st.one_of(st.sampled_from(ALL_VERBS), st.text(max_size=12)),
)
def test_check_move_allows_exactly_the_design_table(
    source: Status, target: Status, verb: str
) -> None:
    if (source, target, verb) in DESIGN_MOVES:
        check_move(source, target, verb)
    else:
        with pytest.raises(IllegalMove):
            check_move(source, target, verb)


def test_job_row_round_trip() -> None:
    row = {
        "id": 7,
        "type": "add",
        "queue": "default",
        "priority": 2,
        "status": "RUNNING",
        "args": '{"a": 1, "b": [2, 3]}',
        "run_at": 10.0,
        "created_at": 9.0,
        "attempt": 1,
        "max_attempts": 3,
        "result": '{"total": 6}',
        "worker": "w1",
    }
    job = Job.from_row(row)
    assert job.status is Status.RUNNING
    assert job.args == {"a": 1, "b": [2, 3]}
    assert job.result == {"total": 6}
    data = job.to_dict()
    assert data["status"] == "RUNNING"
    assert data["worker"] == "w1"
    assert data["timeout"] is None
