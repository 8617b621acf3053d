"""A first end-to-end check of submit, claim and events on both backends."""

from jobengine import Engine, Status


def test_submit_claim_and_events(engine: Engine) -> None:
    job_id = engine.submit("add", a=1, b=2)
    assert engine.get(job_id).status is Status.PENDING
    claimed = engine.store.jobs.claim("w1", [], 10, engine.clock.now())
    assert [job.id for job in claimed] == [job_id]
    assert [event.verb for event in engine.events(job_id)] == ["submit", "claim"]
