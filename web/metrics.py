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
from collections.abc import Iterator, Sequence
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

router = APIRouter(tags=["system"])

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
DURATION_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800)
COST_BUCKETS_USD = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


class JobTablesCollector(Collector):
    """Reads the job tables at scrape time (see the module docstring)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        services = self.app.state.services
        if services is None:
            return
        with services.db.service() as conn:
            yield from self._jobs(conn)
            yield _histogram(
                conn,
                "soundstage_job_queue_wait_seconds",
                "Time from creation to the first start, per kind.",
                "select kind as k0, extract(epoch from started_at - created_at) as x from jobs"
                " where started_at is not null",
                ["kind"],
                WAIT_BUCKETS_S,
            )
            yield _histogram(
                conn,
                "soundstage_job_duration_seconds",
                "Run time of completed jobs, per kind.",
                "select kind as k0, extract(epoch from completed_at - started_at) as x from jobs"
                " where status = 'completed' and started_at is not null",
                ["kind"],
                DURATION_BUCKETS_S,
            )
            yield _histogram(
                conn,
                "soundstage_stage_duration_seconds",
                "Duration of completed stages, per kind and stage.",
                "select j.kind as k0, s.name as k1, s.duration_s as x from job_stages s"
                " join jobs j on j.id = s.job_id where s.status = 'completed'"
                " and s.duration_s is not null",
                ["kind", "stage"],
                DURATION_BUCKETS_S,
            )
            yield _histogram(
                conn,
                "soundstage_job_cost_usd",
                "Total cost of each completed job, per kind (sum/count: mean cost per job).",
                "select kind as k0, total_cost_usd::float8 as x from jobs where status = 'completed'",
                ["kind"],
                COST_BUCKETS_USD,
            )
            gpu = CounterMetricFamily(
                "soundstage_gpu_seconds",
                "GPU-seconds recorded per kind, stage and provider (Modal, Replicate, local).",
                labels=["kind", "stage", "provider"],
            )
            for r in conn.execute(
                "select j.kind, coalesce(c.stage, '') as stage, c.provider, sum(c.units) as s"
                " from job_costs c join jobs j on j.id = c.job_id where c.unit = 'gpu_seconds'"
                " group by 1, 2, 3 order by 1, 2, 3"
            ).fetchall():
                gpu.add_metric([r["kind"], r["stage"], r["provider"]], float(r["s"] or 0))
            yield gpu

    def _jobs(self, conn) -> Iterator[Any]:
        rows = conn.execute(
            "select kind, status, count(*) as n from jobs group by 1, 2 order by 1, 2"
        ).fetchall()
        jobs = GaugeMetricFamily(
            "soundstage_jobs", "Jobs now in each status, per kind.", labels=["kind", "status"]
        )
        finished = CounterMetricFamily(
            "soundstage_jobs_finished",
            "Jobs that ended, per kind and outcome (success rate: completed / all).",
            labels=["kind", "status"],
        )
        queued = 0
        for r in rows:
            jobs.add_metric([r["kind"], r["status"]], r["n"])
            if r["status"] in ("completed", "failed", "canceled"):
                finished.add_metric([r["kind"], r["status"]], r["n"])
            if r["status"] == "queued":
                queued += r["n"]
        yield jobs
        yield finished
        yield GaugeMetricFamily("soundstage_queue_length", "Jobs waiting for a worker.", queued)
        oldest = conn.execute(
            "select coalesce(extract(epoch from now() - min(created_at)), 0) as s from jobs"
            " where status = 'queued'"
        ).fetchone()["s"]
        yield GaugeMetricFamily(
            "soundstage_queue_oldest_wait_seconds",
            "How long the oldest queued job has waited.",
            float(oldest),
        )
        errors = CounterMetricFamily(
            "soundstage_job_errors", "Failed jobs per kind and error code.", labels=["kind", "code"]
        )
        for r in conn.execute(
            "select kind, coalesce(error_code, 'UNKNOWN') as code, count(*) as n from jobs"
            " where status = 'failed' group by 1, 2 order by 1, 2"
        ).fetchall():
            errors.add_metric([r["kind"], r["code"]], r["n"])
        yield errors


def _histogram(
    conn, name: str, doc: str, source_sql: str, labels: list[str], buckets: Sequence[float]
) -> HistogramMetricFamily:
    """A histogram family computed in SQL: cumulative counts per bucket, count and sum."""
    keys = ", ".join(f"k{i}" for i in range(len(labels)))
    counts = ", ".join(
        f"count(*) filter (where x <= {float(b)!r}) as b{i}" for i, b in enumerate(buckets)
    )
    rows = conn.execute(
        f"select {keys}, {counts}, count(*) as n, coalesce(sum(x), 0) as s"
        f" from ({source_sql}) src group by {keys} order by {keys}"
    ).fetchall()
    family = HistogramMetricFamily(name, doc, labels=labels)
    for r in rows:
        pairs = [(repr(float(b)), float(r[f"b{i}"])) for i, b in enumerate(buckets)]
        pairs.append(("+Inf", float(r["n"])))
        family.add_metric(
            [str(r[f"k{i}"]) for i in range(len(labels))], pairs, sum_value=float(r["s"])
        )
    return family


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
