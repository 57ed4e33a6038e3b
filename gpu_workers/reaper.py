"""Repairs what lost workers, lost connections and lost messages leave behind: jobs no
worker is running any more go back to the queue (or fail), throttled jobs whose slot freed
unseen move up, and queued jobs whose wake-up messages were lost get new ones."""

from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef
from django.utils import timezone

from generation import pools
from generation.models import Job
from generation.services import job_requeue_or_fail, job_wake_pool, jobs_promote_throttled, owned_by

from .models import WorkerHeartbeat


def reap_lost_jobs() -> list[Job]:
    """Jobs running or encoding that no worker is running any more: their worker has not
    beaten within the stale window (or never did) and they started before that window —
    or their worker beats on but, two beats after the claim, names it neither as its job nor
    among the ones its finisher stores (it gave the job up, e.g. when the database went away)."""
    cutoff = timezone.now() - timedelta(seconds=settings.FRAMECAST_HEARTBEAT_STALE_SECONDS)
    # Alive and the same process that claimed the job: a worker restarted under the same
    # name (a container restart) beats again, but its predecessor's job is lost all the same.
    same_process_alive = WorkerHeartbeat.objects.filter(
        hostname=OuterRef("worker"), last_seen_at__gte=cutoff, started_at__lte=OuterRef("started_at")
    )
    settled = timedelta(seconds=max(2 * settings.FRAMECAST_HEARTBEAT_SECONDS, 5))
    gave_up = (
        WorkerHeartbeat.objects.filter(
            hostname=OuterRef("worker"),
            started_at__lte=OuterRef("started_at"),
            last_seen_at__gte=ExpressionWrapper(OuterRef("started_at") + settled, output_field=DateTimeField()),
        )
        .exclude(current_job_id=OuterRef("pk"))
        .exclude(finishing_job_id=OuterRef("pk"))
    )
    running = Job.objects.filter(state__in=[Job.State.RUNNING, Job.State.ENCODING])
    silent = running.filter(started_at__lt=cutoff).exclude(Exists(same_process_alive))
    handled = []
    for job, why in [(job, "stopped responding") for job in silent] + [
        (job, "gave the job up") for job in running.filter(Exists(gave_up)) if not _being_finished(job)
    ]:
        result = job_requeue_or_fail(job.pk, reason=f"the worker {job.worker or '?'} {why}", expect=owned_by(job))
        if result is not None:
            handled.append(result)
    return handled


def _being_finished(job: Job) -> bool:
    """Whether the job's worker names it among the clips its finisher holds (a worker with
    several finisher threads stores several at once; checked here rather than in SQL, as
    the few candidates allow, so that it reads the same on every database)."""
    beat = WorkerHeartbeat.objects.filter(hostname=job.worker).values_list("finishing_job_ids", flat=True).first()
    return str(job.pk) in (beat or [])


def promote_throttled_jobs() -> int:
    """Throttled jobs move up when a job of their team ends; if that moment was lost (the
    database went away just after the end committed), the next run here moves them."""
    team_ids = Job.objects.filter(state=Job.State.THROTTLED).values_list("team_id", flat=True).distinct()
    return sum(len(jobs_promote_throttled(team_id)) for team_id in list(team_ids))


def wake_idle_pools() -> dict[str, int]:
    """Each pool gets as many wake-up messages as it has queued jobs beyond the messages
    waiting in its broker queue: wake-ups lost to a broker restart, or taken by a worker
    that could not claim, are replaced, while a busy pool's own backlog is left alone.
    A surplus wake-up finds nothing and costs one query. (A woken worker also claims queued
    job after queued job by itself, runner.run_queue: after a Redis restart without
    persistence the first of these wake-ups per worker restores the full drain.)"""
    queued = dict(
        Job.objects.filter(state=Job.State.QUEUED).values("pool").annotate(n=Count("pk")).values_list("pool", "n")
    )
    woken = {}
    with current_app.connection_for_write() as conn:
        for pool, count in sorted(queued.items()):
            missing = count - conn.default_channel.queue_declare(queue=pools.queue_name(pool)).message_count
            for _ in range(missing):
                job_wake_pool(pool)
            if missing > 0:
                woken[pool] = missing
    return woken
