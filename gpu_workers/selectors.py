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


def worker_statuses(pool: str | None = None) -> list[WorkerStatus]:
    cutoff = timezone.now() - timedelta(seconds=settings.FRAMECAST_HEARTBEAT_STALE_SECONDS)
    workers = WorkerHeartbeat.objects.all()
    if pool:
        workers = workers.filter(pool=pool)
    return [
        WorkerStatus(
            worker=worker,
            status="stale" if worker.last_seen_at < cutoff else ("busy" if worker.current_job_id else "healthy"),
        )
        for worker in workers
    ]
