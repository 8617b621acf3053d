"""The job types benchmark workers run (`jobengine --app bench.app worker`)."""

from __future__ import annotations

from jobengine import Engine


def make_engine(url: str | None = None) -> Engine:
    """An engine with the benchmark's job types registered."""
    engine = Engine(url)

    @engine.job
    def noop() -> None:
        return None

    @engine.job
    def stamp(t: float) -> None:
        """Record the seconds from its submit (`t`) to its start, for the latency benchmark."""
        from bench.peers.common import record_stamp

        record_stamp(t)

    return engine


engine = make_engine()
