"""The data behind the pool-status view: each worker's last report and what it means."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerStatus:
    worker: WorkerHeartbeat
    # "busy" (running a job), "healthy" (idle and ready), "warming" (loading its models: no job
    # yet), "stopping" (shutting down: no new job), "stale" (silent: presumed lost)
    status: str


def stale_cutoff():
    """The lost-worker rule, in one place: a worker whose last heartbeat is older than this
    moment (FRAMECAST_HEARTBEAT_STALE_SECONDS ago) is presumed lost."""
    return timezone.now() - timedelta(seconds=settings.FRAMECAST_HEARTBEAT_STALE_SECONDS)


def worker_statuses(pool: str | None = None, *, seen_since=None) -> list[WorkerStatus]:
    """Every worker's last report (of `pool`; seen since `seen_since`) and what it means."""
    cutoff = stale_cutoff()
    workers = WorkerHeartbeat.objects.all()
    if pool:
        workers = workers.filter(pool=pool)
    if seen_since is not None:
        workers = workers.filter(last_seen_at__gte=seen_since)
    return [WorkerStatus(worker=worker, status=_status(worker, cutoff)) for worker in workers]


def _status(worker: WorkerHeartbeat, cutoff) -> str:
    if worker.last_seen_at < cutoff:
        return "stale"
    if worker.phase == WorkerHeartbeat.Phase.WARMING:
        return "warming"
    if worker.current_job_id:
        return "busy"
    return "stopping" if worker.phase == WorkerHeartbeat.Phase.STOPPING else "healthy"


def pool_has_ready_worker(pool: str) -> bool:
    """Whether a live worker of `pool` has warmed up and is not shutting down: a queued job
    of a pool without one waits for a GPU to start (settings.FRAMECAST_POOL_READINESS)."""
    ready = WorkerHeartbeat.objects.filter(
        pool__contains=pool, phase=WorkerHeartbeat.Phase.READY, last_seen_at__gte=stale_cutoff()
    ).values_list("pool", flat=True)
    return any(pool in serves.split(",") for serves in ready)  # a worker may serve several pools
