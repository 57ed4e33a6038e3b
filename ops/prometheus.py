"""Prometheus metrics at /metrics: request latency (this process), and read from the
database at scrape time (the same for every web replica, so scrape one or take max()):
jobs by state and pool, queue depth and the oldest queued job per pool, GPU-seconds and
cost, each worker's last heartbeat, and each pool's scaling signals and desired worker
count (framecast_pool_*, ops/scaling.py).

Who may read them: with FRAMECAST_METRICS_TOKEN set, a scraper that sends
`Authorization: Bearer <token>`; without it, only clients on this machine (loopback).
"""

import hmac
import ipaddress
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger("framecast.requests")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

REQUEST_SECONDS = Histogram(
    "framecast_http_request_duration_seconds",
    "Time from a request's arrival to its response headers, by route (URL pattern, not path).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
# Workers silent for longer than this are no longer listed (hostnames come and go).
HEARTBEAT_WINDOW = timedelta(days=1)


QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return request.path_info if request.path_info in QUIET_PATHS else "unmatched"
    return "/" + match.route if match.route else match.view_name or "unmatched"


class RequestMetricsMiddleware:
    """Times every request, and logs one line for it (with its request id, see core.logs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = _route(request)
        REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(elapsed)
        if request.path_info in QUIET_PATHS and response.status_code < 400:
            return response  # probes and scrapes every few seconds would drown the log
        logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed * 1000,
            extra={"method": request.method, "path": request.path, "route": route,
                   "status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
        )
        return response


class JobsCollector:
    """Job and worker figures, read from the database when scraped."""

    def describe(self):
        return []  # registering must not query the database (it may not exist yet)

    def collect(self):
        from django.db.models import Count, Min, Sum
        from django.utils import timezone

        from generation.models import Job
        from generation.pools import all_pools
        from gpu_workers.selectors import worker_statuses

        now = timezone.now()
        pool_names = sorted({pool.name for pool in all_pools()})

        jobs = GaugeMetricFamily("framecast_jobs", "Jobs stored, by state and pool.", labels=["state", "pool"])
        counts = {(row["state"], row["pool"]): row["n"] for row in Job.objects.values("state", "pool").annotate(n=Count("pk"))}
        for state in Job.State.values:
            for pool in sorted(set(pool_names) | {pool for _, pool in counts}):
                jobs.add_metric([state, pool], counts.get((state, pool), 0))
        yield jobs

        depth = GaugeMetricFamily("framecast_queue_depth", "Jobs waiting in each pool's queue.", labels=["pool"])
        oldest = GaugeMetricFamily(
            "framecast_queue_oldest_seconds", "How long the oldest queued job of each pool has waited.", labels=["pool"]
        )
        queued = {
            row["pool"]: row
            for row in Job.objects.filter(state=Job.State.QUEUED).values("pool").annotate(n=Count("pk"), first=Min("queued_at"))
        }
        for pool in sorted(set(pool_names) | set(queued)):
            row = queued.get(pool, {"n": 0, "first": None})
            depth.add_metric([pool], row["n"])
            oldest.add_metric([pool], (now - row["first"]).total_seconds() if row["first"] else 0)
        yield depth
        yield oldest

        gpu = GaugeMetricFamily("framecast_gpu_seconds", "GPU-seconds used by the jobs stored, by pool.", labels=["pool"])
        cost = GaugeMetricFamily("framecast_cost_usd", "What the stored jobs' GPU time cost, in US dollars, by pool.", labels=["pool"])
        spent = Job.objects.filter(gpu_seconds__isnull=False).values("pool").annotate(seconds=Sum("gpu_seconds"), usd=Sum("cost_usd"))
        for row in spent:
            gpu.add_metric([row["pool"]], row["seconds"] or 0)
            cost.add_metric([row["pool"]], float(row["usd"] or 0))
        yield gpu
        yield cost

        labels = ["worker", "pool", "device"]
        seen = GaugeMetricFamily("framecast_worker_heartbeat_age_seconds", "Seconds since each worker last reported.", labels=labels)
        up = GaugeMetricFamily(
            "framecast_worker_up", "1 while a worker reports within FRAMECAST_HEARTBEAT_STALE_SECONDS, else 0.", labels=labels
        )
        busy = GaugeMetricFamily("framecast_worker_busy", "1 while a worker runs a job.", labels=labels)
        done = GaugeMetricFamily("framecast_worker_jobs_done", "Jobs a worker process has run since it started.", labels=labels)
        memory = GaugeMetricFamily("framecast_worker_memory_used_mb", "Memory a worker reports in use (GPU, else RSS).", labels=labels)
        # Counted since the worker process started; a restart is a counter reset to Prometheus.
        hits = CounterMetricFamily(
            "framecast_worker_embedding_cache_hits", "Prompt embeddings a worker took from its cache.", labels=labels
        )
        misses = CounterMetricFamily(
            "framecast_worker_embedding_cache_misses", "Prompt embeddings a worker had its text encoder make.", labels=labels
        )
        for status in worker_statuses(seen_since=now - HEARTBEAT_WINDOW):
            worker = status.worker
            key = [worker.hostname, worker.pool, worker.device]
            seen.add_metric(key, (now - worker.last_seen_at).total_seconds())
            up.add_metric(key, 0 if status.status == "stale" else 1)
            busy.add_metric(key, 1 if worker.current_job_id else 0)
            done.add_metric(key, worker.jobs_done)
            memory.add_metric(key, worker.memory_used_mb)
            hits.add_metric(key, worker.embedding_cache_hits)
            misses.add_metric(key, worker.embedding_cache_misses)
        yield from (seen, up, busy, done, memory, hits, misses)
        yield from _pool_scaling_gauges(all_pools())


# The scaling signals of each pool (ops/scaling.py), for KEDA or any autoscaler that reads a
# metric: name, help, and the PoolSignals field it shows.
POOL_GAUGES = (
    ("framecast_pool_queued_jobs", "Jobs queued in the pool, waiting for a worker.", "queued"),
    ("framecast_pool_throttled_jobs", "Jobs of the pool waiting for a slot of their team's plan.", "throttled"),
    ("framecast_pool_running_jobs", "Jobs a worker of the pool is running (denoising).", "running"),
    ("framecast_pool_warm_workers", "Workers of the pool reporting, model loaded or loading done.", "warm_workers"),
    ("framecast_pool_busy_workers", "Workers of the pool running a job.", "busy_workers"),
    ("framecast_pool_oldest_queued_seconds", "How long the pool's oldest queued job has waited.", "oldest_queued_seconds"),
    ("framecast_pool_backlog_gpu_seconds", "Estimated GPU-seconds of the pool's queued jobs (recent durations per model).",
     "backlog_gpu_seconds"),
)


def _pool_scaling_gauges(pools):
    from .scaling import desired_workers, pool_signals

    families = {name: GaugeMetricFamily(name, text, labels=["pool"]) for name, text, _ in POOL_GAUGES}
    desired = GaugeMetricFamily(
        "framecast_pool_desired_workers",
        "Workers the pool should have now, within min_workers..max_workers (GET /ops/scaling/<pool> explains).",
        labels=["pool"],
    )
    for pool in pools:
        signals = pool_signals(pool)
        for name, _, field in POOL_GAUGES:
            families[name].add_metric([pool.name], getattr(signals, field))
        desired.add_metric([pool.name], desired_workers(signals, pool))
    yield from families.values()
    yield desired


REGISTRY.register(JobsCollector())


def _allowed(request) -> bool:
    token = settings.FRAMECAST_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics(request):
    if not _allowed(request):
        reason = (
            "Send Authorization: Bearer <FRAMECAST_METRICS_TOKEN>."
            if settings.FRAMECAST_METRICS_TOKEN
            else "Metrics are served to loopback clients only; set FRAMECAST_METRICS_TOKEN to scrape from elsewhere."
        )
        return HttpResponse(reason + "\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
