"""Reads of jobs. Every view and consumer reaches a job through `job_for_team`."""

from django.http import Http404

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


def jobs_for_team(team, *, limit: int = 24):
    return Job.objects.filter(team=team).select_related("created_by")[:limit]
