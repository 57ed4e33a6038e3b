"""Public share links: a finished video can be shown to anyone holding its link.

The link carries a random token (256 bits), not the job id, so it cannot be guessed or
derived from anything the team has shown elsewhere. Turning sharing off clears the token:
the old link then 404s, and turning it on again makes a new link.
"""

import secrets

from django.http import Http404
from django.utils.text import slugify

from .models import Job


class NotShareable(Exception):
    """Only a finished (succeeded) video can be shared."""


def share_url(job: Job) -> str | None:
    from django.urls import reverse

    return reverse("generation:shared", args=[job.share_token]) if job.share_token else None


def shared_filename(job: Job, extension: str) -> str:
    """The name a shared file downloads under: from the prompt (which the shared page shows
    anyway), never the job id, which the team's own URLs and API are keyed by."""
    stem = slugify(job.prompt)[:60].strip("-")
    return f"framecast-{stem or 'video'}.{extension}"


def job_share_enable(job: Job) -> Job:
    """Make the job's video public by link (the same link if it already is)."""
    if job.state != Job.State.SUCCEEDED:
        raise NotShareable("Only a finished video can be shared.")
    from safety.moderation import is_taken_down

    if is_taken_down(job):
        raise NotShareable("Staff took this video down after a report; it cannot be shared again.")
    if not job.share_token:
        token = secrets.token_urlsafe(32)
        # Conditional: of two concurrent "share" clicks, one token wins and both see it.
        Job.objects.filter(pk=job.pk, share_token="").update(share_token=token)
        job.refresh_from_db(fields=["share_token"])
    return job


def job_share_disable(job: Job) -> Job:
    """Turn the public link off: anyone opening it from now on gets 404."""
    Job.objects.filter(pk=job.pk).update(share_token="")
    job.share_token = ""
    return job


def job_for_share_token(token: str) -> Job:
    """The shared, finished video behind a public link, or Http404."""
    if not token:
        raise Http404("No such video.")
    job = Job.objects.filter(share_token=token, state=Job.State.SUCCEEDED).exclude(video="").first()
    if job is None:
        raise Http404("No such video.")
    return job
