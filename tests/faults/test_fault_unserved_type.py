"""Item 7: a job of a type no worker has stays PENDING, without churning events, for a day."""

from __future__ import annotations

from invariants import check_invariants

from jobengine import Engine, ManualClock, Status, Worker
from jobengine.settings import Settings

DAY = 24 * 3600.0


def test_an_unserved_type_waits_a_simulated_day_with_no_event_churn(
    database_url: str, clock: ManualClock
) -> None:
    producer, consumer = Engine(database_url, clock=clock), Engine(database_url, clock=clock)
    try:
        producer.job(lambda: None, name="only_the_producer_has_it")
        consumer.job(lambda: None, name="served")
        waiting = producer.submit("only_the_producer_has_it")
        worker = Worker(consumer, Settings(poll_interval=60))
        for _ in range(int(DAY // 60)):  # a claim every minute of a day
            clock.advance(60)
            worker.run_once()
        served = consumer.submit("served")
        assert worker.drain() == 1  # the worker itself was fine all along
        assert producer.get(waiting).status is Status.PENDING
        assert producer.get(waiting).worker is None
        assert [event.verb for event in producer.events(waiting)] == ["submit"]
        assert consumer.get(served).status is Status.SUCCESS
    finally:
        producer.close()
        consumer.close()
    check_invariants(database_url)


def test_workers_record_the_types_they_serve(database_url: str) -> None:
    engine = Engine(database_url)
    try:
        engine.job(lambda: None, name="b_type")
        engine.job(lambda: None, name="a_type")
        worker = Worker(engine)
        worker.heartbeat.register()
        [record] = engine.store.workers.find()
        assert record.types == ["a_type", "b_type"]
    finally:
        engine.close()
