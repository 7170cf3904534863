"""``GET /metrics`` in Prometheus' text format (prometheus-client), for operators only.

Two sources, because the work happens in other processes (worker threads, Modal containers):
- this API process counts its own requests: rate, errors (by status) and latency by route
  template (``/api/v1/jobs/{job_id}``, never the raw path: bounded label values);
- the job tables are read at scrape time (one collector, a few aggregate queries): jobs by kind
  and status, the queue's length and wait, job and stage duration histograms (p50/p95/p99 with
  ``histogram_quantile``), finished jobs and errors by code (success and error rates with
  ``rate``), cost per job by kind (a histogram: sum/count is the mean cost per video), and
  GPU-seconds by stage. Histograms and counters from the tables are cumulative over every job
  kept, so Prometheus' ``rate`` and ``increase`` work on them.

Access: ``Authorization: Bearer <SOUNDSTAGE_METRICS_TOKEN>`` (a scrape-only secret) or an admin
user's access token. Never public.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from shared.auth import is_admin
from shared.errors import SoundstageError, Unauthorized
from shared.jobs import JobStore

router = APIRouter(tags=["system"])

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
DURATION_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800)
COST_BUCKETS_USD = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


# The histograms read from the job tables: (measure in shared.job_stats, name, help, labels,
# bucket bounds).
HISTOGRAMS = (
    (
        "queue_wait_s",
        "soundstage_job_queue_wait_seconds",
        "Time from creation to the first start, per kind.",
        ["kind"],
        WAIT_BUCKETS_S,
    ),
    (
        "job_duration_s",
        "soundstage_job_duration_seconds",
        "Run time of completed jobs, per kind.",
        ["kind"],
        DURATION_BUCKETS_S,
    ),
    (
        "stage_duration_s",
        "soundstage_stage_duration_seconds",
        "Duration of completed stages, per kind and stage.",
        ["kind", "stage"],
        DURATION_BUCKETS_S,
    ),
    (
        "job_cost_usd",
        "soundstage_job_cost_usd",
        "Total cost of each completed job, per kind (sum/count: mean cost per job).",
        ["kind"],
        COST_BUCKETS_USD,
    ),
)


class JobTablesCollector(Collector):
    """Reads the job tables at scrape time (see the module docstring)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        services = self.app.state.services
        if services is None:
            return
        jobs = services.jobs
        yield from self._jobs(jobs)
        for measure, name, doc, labels, buckets in HISTOGRAMS:
            family = HistogramMetricFamily(name, doc, labels=labels)
            for r in jobs.histogram(measure, buckets):
                pairs = [(repr(float(b)), n) for b, n in zip(buckets, r["counts"], strict=True)]
                pairs.append(("+Inf", r["count"]))
                family.add_metric(r["labels"], pairs, sum_value=r["sum"])
            yield family
        gpu = CounterMetricFamily(
            "soundstage_gpu_seconds",
            "GPU-seconds recorded per kind, stage and provider (Modal, Replicate, local).",
            labels=["kind", "stage", "provider"],
        )
        for r in jobs.gpu_seconds_by_stage():
            gpu.add_metric([r["kind"], r["stage"], r["provider"]], float(r["s"] or 0))
        yield gpu

    def _jobs(self, jobs: JobStore) -> Iterator[Any]:
        rows = jobs.jobs_by_kind_and_status()
        gauge = GaugeMetricFamily(
            "soundstage_jobs", "Jobs now in each status, per kind.", labels=["kind", "status"]
        )
        finished = CounterMetricFamily(
            "soundstage_jobs_finished",
            "Jobs that ended, per kind and outcome (success rate: completed / all).",
            labels=["kind", "status"],
        )
        queued = 0
        for r in rows:
            gauge.add_metric([r["kind"], r["status"]], r["n"])
            if r["status"] in ("completed", "failed", "canceled"):
                finished.add_metric([r["kind"], r["status"]], r["n"])
            if r["status"] == "queued":
                queued += r["n"]
        yield gauge
        yield finished
        yield GaugeMetricFamily("soundstage_queue_length", "Jobs waiting for a worker.", queued)
        yield GaugeMetricFamily(
            "soundstage_queue_oldest_wait_seconds",
            "How long the oldest queued job has waited.",
            jobs.oldest_queued_wait_s(),
        )
        errors = CounterMetricFamily(
            "soundstage_job_errors", "Failed jobs per kind and error code.", labels=["kind", "code"]
        )
        for r in jobs.failures_by_kind_and_code():
            errors.add_metric([r["kind"], r["code"]], r["n"])
        yield errors


def install(app: FastAPI) -> None:
    """Count this process' requests and serve ``GET /metrics`` (call once per app)."""
    registry = CollectorRegistry()
    requests = Counter(
        "soundstage_http_requests",
        "API requests by method, route and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "soundstage_http_request_duration_seconds",
        "API request latency by method and route.",
        ["method", "route"],
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    registry.register(JobTablesCollector(app))
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template != "/metrics":
                latency.labels(request.method, template).observe(time.perf_counter() - started)
                requests.labels(request.method, template, str(status)).inc()

    app.include_router(router)


def _authorize(request: Request) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "Metrics need the scrape secret or an operator's token.", code="AUTH_REQUIRED"
        )
    services = request.app.state.services
    secret = services.settings.metrics_token
    if secret and hmac.compare_digest(token.encode(), secret.encode()):
        return
    user = services.auth.verifier.verify(token)  # 401 for a bad token
    if not is_admin(user.claims):
        raise SoundstageError(
            "Metrics are for operators (app_metadata.role admin) or the scrape secret.",
            code="ADMIN_REQUIRED",
            status=403,
        )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    _authorize(request)
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
