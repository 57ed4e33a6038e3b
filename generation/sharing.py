"""Public share links: a finished video can be shown to anyone holding its link.

The link carries a random token (256 bits), not the job id, so it cannot be guessed or
derived from anything the team has shown elsewhere. Turning sharing off clears the token:
the old link then 404s, and turning it on again makes a new link. A video staff took down
is never shared again (`job_take_down`).
"""

import secrets

from django.db.models.functions import Coalesce, Now
from django.http import Http404
from django.utils.text import slugify

from core.errors import Refusal

from .models import Job

TAKEN_DOWN_MESSAGE = "This video was taken down after a report and cannot be shared."


class NotShareable(Refusal):
    """Only a finished video that was not taken down can be shared."""

    status = 409
    code = "not_shareable"


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
    if job.taken_down_at is not None:
        raise NotShareable(TAKEN_DOWN_MESSAGE, status=403, code="taken_down")
    if not job.share_token:
        token = secrets.token_urlsafe(32)
        # Conditional: of two concurrent "share" clicks, one token wins and both see it;
        # and a take-down committed since the job was read is not undone by a late click.
        Job.objects.filter(pk=job.pk, share_token="", taken_down_at__isnull=True).update(share_token=token)
        job.refresh_from_db(fields=["share_token", "taken_down_at"])
        if job.taken_down_at is not None:
            raise NotShareable(TAKEN_DOWN_MESSAGE, status=403, code="taken_down")
    return job


def job_share_disable(job: Job) -> Job:
    """Turn the public link off: anyone opening it from now on gets 404."""
    Job.objects.filter(pk=job.pk).update(share_token="")
    job.share_token = ""
    return job


def job_take_down(*, job: Job) -> Job:
    """Staff took the video down after a report: its link dies and it can never be shared
    again. Taking down a video already taken down keeps the first time."""
    Job.objects.filter(pk=job.pk).update(share_token="", taken_down_at=Coalesce("taken_down_at", Now()))
    job.refresh_from_db(fields=["share_token", "taken_down_at"])
    return job


def job_for_share_token(token: str) -> Job:
    """The shared, finished video behind a public link, or Http404."""
    if not token:
        raise Http404("No such video.")
    job = (
        Job.objects.filter(share_token=token, state=Job.State.SUCCEEDED, taken_down_at__isnull=True)
        .exclude(video="")
        .first()
    )
    if job is None:
        raise Http404("No such video.")
    return job
