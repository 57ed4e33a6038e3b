"""The data behind the pool-status view: each worker's last report and what it means."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerStatus:
    worker: WorkerHeartbeat
    status: str  # "busy" (running a job), "healthy" (idle), "stale" (silent: presumed lost)


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
    return [
        WorkerStatus(
            worker=worker,
            status="stale" if worker.last_seen_at < cutoff else ("busy" if worker.current_job_id else "healthy"),
        )
        for worker in workers
    ]
