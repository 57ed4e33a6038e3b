"""Reads of jobs. Every view and consumer reaches a job through `job_for_team`."""

from django.http import Http404
from django.utils import timezone

from .models import Job


def job_for_team(team, job_id) -> Job:
    """The team's job, or Http404 — also when the job exists but belongs to another team,
    so that nobody learns which ids exist."""
    if team is None:
        raise Http404("No such job.")
    job = Job.objects.filter(team=team, pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    return job


def job_queue_position(job: Job) -> int | None:
    """1 = next to start on its pool; None unless the job waits in the queue."""
    if job.state != Job.State.QUEUED or job.dispatch_key is None:
        return None
    ahead = Job.objects.filter(pool=job.pool, state=Job.State.QUEUED, dispatch_key__lt=job.dispatch_key).count()
    return ahead + 1


def job_eta_seconds(job: Job) -> float | None:
    """Seconds left for a running job, from its pace so far."""
    if job.state != Job.State.RUNNING or not job.progress_step or not job.started_at:
        return None
    elapsed = (timezone.now() - job.started_at).total_seconds()
    return round(elapsed / job.progress_step * (job.steps - job.progress_step), 1)
