"""The job types benchmark workers run (`jobengine --app bench.app worker`)."""

from __future__ import annotations

from jobengine import Engine


def make_engine(url: str | None = None) -> Engine:
    """An engine with the benchmark's job types registered."""
    engine = Engine(url)

    @engine.job
    def noop() -> None:
        return None

    return engine


engine = make_engine()
