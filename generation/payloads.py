"""A job's outward shapes, in one module of plain functions: the API's video object, the
customer webhook payload, progress, the studio's live status and the live websocket events.

The REST serializer, the webhooks, the OpenAI translation, the studio and the websocket
consumer all build from here, so a field means the same everywhere. The webhook payload
is versioned (`WEBHOOK_PAYLOAD_VERSION`, recorded on every delivery): customers parse it in
code we do not see, so a change to its fields is a new version, never a silent rename.

Reads no more than the job row, except for a job that is still queued: its queue position
(one COUNT, generation.selectors) and, in the live status, whether its pool has a warm
worker (one query, generation.readiness). Ending jobs and their webhooks never pay for them.
"""

from django.conf import settings
from django.urls import reverse

from billing import budgets

from . import readiness
from .models import Job
from .selectors import job_eta_seconds, job_queue_position

# The date the webhook payload's fields were last changed (Stripe-style version).
WEBHOOK_PAYLOAD_VERSION = "2026-12-01"


def progress(job: Job) -> dict:
    return {
        "step": job.progress_step,
        "steps": job.steps,
        "percent": round(100 * job.progress_step / job.steps) if job.steps else 0,
        "eta_seconds": job_eta_seconds(job),
    }


def content_url(job: Job, *, base_url: str) -> str | None:
    if job.state != Job.State.SUCCEEDED:
        return None
    return base_url.rstrip("/") + reverse("api:video_content", args=[job.id])


def video(job: Job, *, base_url: str) -> dict:
    """The REST API's video object (GET /api/v1/videos/<id>). `base_url`: the scheme and
    host the client used (or FRAMECAST_PUBLIC_URL where there is no request)."""
    return {
        "id": str(job.id),
        "status": job.state,
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "model": job.model_name,
        "seed": job.seed,
        "width": job.width,
        "height": job.height,
        "num_frames": job.num_frames,
        "fps": job.fps,
        "steps": job.steps,
        "guidance": job.guidance,
        "speed": job.speed,
        "price_credits": job.price_credits,
        "metadata": job.metadata,
        "webhook_url": job.webhook_url,
        "progress": progress(job),
        "queue_position": job_queue_position(job),
        "error": job.error_message,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "content_url": content_url(job, base_url=base_url),
        "remixed_from": str(job.remixed_from_id) if job.remixed_from_id else None,
        "strength": job.strength,
        "has_input_image": bool(job.input_image),
        "loras": loras(job),
    }


def loras(job: Job) -> list[dict]:
    """The team LoRAs a job applied, as recorded at submission (not where their files are)."""
    return [{"id": entry["id"], "name": entry["name"], "scale": entry["scale"]} for entry in job.loras or ()]


def webhook_data(job: Job) -> dict:
    """The `data` of a customer webhook event (version WEBHOOK_PAYLOAD_VERSION): the video
    object as of that version, with links on the public URL."""
    return video(job, base_url=settings.FRAMECAST_PUBLIC_URL)


def budget_alert_data(alert) -> dict:
    """The `data` of a `budget.threshold_reached` event (version WEBHOOK_PAYLOAD_VERSION):
    the threshold, the period, and the budget object as GET /api/v1/budgets/{id} has it."""
    return budgets.alert_data(alert)


def live_status(job: Job) -> dict:
    """What a studio card shows, from the stored job: for pages that (re)load, and for the
    queue positions that the websocket does not carry."""
    return {
        "id": str(job.id),
        "state": job.state,
        "state_label": job.get_state_display(),
        "step": job.progress_step,
        "steps": job.steps,
        "eta_seconds": job_eta_seconds(job),
        "queue_position": job_queue_position(job),
        # Queued with no warm worker in its pool: a GPU is starting (a cold start, minutes
        # on real models), not a silent queue.
        "starting_gpu": job.state == Job.State.QUEUED and not readiness.pool_has_ready_worker(job.pool),
    }


def terminal_event(job: Job) -> dict:
    """The live event of a job that has ended."""
    if job.state == Job.State.SUCCEEDED:
        return {"type": "succeeded", "video_url": job.video_url(), "poster_url": job.poster_url()}
    if job.state == Job.State.CANCELLED:
        return {"type": "cancelled"}
    return {"type": "failed", "reason": job.error_message or "The job failed."}


def events_for_state(job: Job) -> list[dict]:
    """The live events that bring a newly connected client up to the job's stored state
    (live delivery is best effort, see generation.events)."""
    State = Job.State
    if job.state == State.THROTTLED:
        return [{"type": "throttled"}]
    if job.state == State.QUEUED:
        return [{"type": "queued"}]
    if job.state == State.RUNNING:
        events = [{"type": "started"}]
        if job.progress_step:
            events.append({"type": "step", "i": job.progress_step, "n": job.steps, "eta_seconds": None})
        return events
    if job.state == State.ENCODING:
        return [{"type": "encoding"}]
    return [terminal_event(job)]


def _iso(moment) -> str | None:
    """As DRF writes date-times (ISO 8601, UTC as Z), so the shapes did not change."""
    if moment is None:
        return None
    value = moment.isoformat()
    return value[:-6] + "Z" if value.endswith("+00:00") else value
