"""/metrics in the Prometheus text format, read at each scrape (ended jobs: web/ended.py)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from jobengine.model import TERMINAL, Status
from jobengine.web.dashboard import Dashboard
from jobengine.web.ended import DURATION_BOUNDS, Ended

WORKER_STATES = ("alive", "draining", "dead")


class EngineCollector(Collector):
    """The engine's state as metrics: every value is read fresh when Prometheus scrapes."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def collect(self) -> Iterator[Metric]:
        engine, queries = self.dashboard.engine, self.dashboard.queries
        now = engine.clock.now()
        jobs = GaugeMetricFamily(
            "jobengine_jobs",
            "Jobs not ended yet, by status and queue.",
            labels=["status", "queue"],
        )
        waiting = sorted(set(Status) - TERMINAL)
        for (status, queue), count in sorted(queries.count_by_status_and_queue(waiting).items()):
            jobs.add_metric([status.value, queue], count)
        ended = CounterMetricFamily(
            "jobengine_jobs_ended",
            "Jobs that ended, by outcome (as long as they are kept in the database).",
            labels=["status"],
        )
        reading = self.dashboard.ended.read(now)
        for status in sorted(TERMINAL):
            ended.add_metric([status.value], reading.totals.get(status, 0))
        yield jobs
        yield ended
        oldest = queries.oldest_due(now)
        yield GaugeMetricFamily(
            "jobengine_oldest_waiting_job_age_seconds",
            "How long the longest-waiting due PENDING job has waited (0 when none waits).",
            value=max(0.0, now - oldest.run_at) if oldest else 0.0,
        )
        yield self._workers(now)
        yield self._durations(reading)

    def _workers(self, now: float) -> Metric:
        workers = GaugeMetricFamily("jobengine_workers", "Workers by state.", labels=["state"])
        found = self.dashboard.engine.store.workers.overview(now, self.dashboard.config.dead_after)
        for state in WORKER_STATES:
            workers.add_metric([state], sum(1 for worker in found if worker.state == state))
        return workers

    def _durations(self, reading: Ended) -> Metric:
        counts, count, total = reading.durations()
        buckets = [
            (f"{bound:g}", float(n)) for bound, n in zip(DURATION_BOUNDS, counts, strict=True)
        ]
        buckets.append(("+Inf", float(count)))
        return GaugeHistogramMetricFamily(
            "jobengine_job_duration_seconds",
            "Run time of the jobs that ended in the last hour.",
            buckets=buckets,
            gsum_value=total,
        )


def registry_for(dashboard: Dashboard) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(dashboard))
    return registry


def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    body = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
