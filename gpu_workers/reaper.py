"""Finds jobs whose worker is gone and puts them back in the queue (or fails them)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from generation.models import Job
from generation.services import job_requeue_or_fail, job_wake_pool

from .models import WorkerHeartbeat


def reap_lost_jobs() -> list[Job]:
    """Jobs running or encoding on a worker that has not beaten within the stale window
    (or never did) — and that started before that window, so a job just claimed by a
    worker about to beat for the first time is left alone."""
    cutoff = timezone.now() - timedelta(seconds=settings.FRAMECAST_HEARTBEAT_STALE_SECONDS)
    # Alive and the same process that claimed the job: a worker restarted under the same
    # name (a container restart) beats again, but its predecessor's job is lost all the same.
    same_process_alive = WorkerHeartbeat.objects.filter(
        hostname=OuterRef("worker"), last_seen_at__gte=cutoff, started_at__lte=OuterRef("started_at")
    )
    lost = Job.objects.filter(state__in=[Job.State.RUNNING, Job.State.ENCODING], started_at__lt=cutoff).exclude(
        Exists(same_process_alive)
    )
    handled = []
    for job in lost:
        result = job_requeue_or_fail(job.pk, reason=f"the worker {job.worker or '?'} stopped responding")
        if result is not None:
            handled.append(result)
    return handled


def wake_idle_pools() -> list[str]:
    """Pools with a job queued for longer than the stale window while none of their workers
    is busy get one more wake-up message each — in case the broker lost messages (a Redis
    restart). One per pool per run: surplus wake-ups find nothing and cost one query."""
    cutoff = timezone.now() - timedelta(seconds=settings.FRAMECAST_HEARTBEAT_STALE_SECONDS)
    waiting = set(
        Job.objects.filter(state=Job.State.QUEUED, queued_at__lt=cutoff).values_list("pool", flat=True).distinct()
    )
    busy = set(
        Job.objects.filter(state__in=[Job.State.RUNNING, Job.State.ENCODING]).values_list("pool", flat=True).distinct()
    )
    woken = sorted(waiting - busy)
    for pool in woken:
        job_wake_pool(pool)
    return woken
