"""Item 12: one schedule row this version cannot read stops no other schedule from firing."""

from __future__ import annotations

from invariants import check_invariants

from jobengine import Engine, ManualClock


def test_a_broken_schedule_row_is_skipped_and_named_while_the_good_one_fires(
    engine: Engine, clock: ManualClock
) -> None:
    engine.job(lambda: None, name="tidy")
    engine.schedules.add("broken", "tidy", "* * * * *")
    engine.schedules.add("good", "tidy", "* * * * *")
    with engine.store.database.transaction() as transaction:  # a row written by someone else
        transaction.execute("UPDATE schedules SET args = '{not json' WHERE name = 'broken'")
    clock.advance(120)
    fired = engine.schedules.tick(clock.now())
    assert fired and {engine.get(job_id).schedule for job_id in fired} == {"good"}
    assert [schedule.name for schedule in engine.schedules.list()] == ["good"]
    problems = engine.schedules.unreadable()
    assert list(problems) == ["broken"] and "JSONDecodeError" in problems["broken"]
    check_invariants(engine.url)
