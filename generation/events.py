"""Live progress events, pushed to a job's websocket group.

Delivery is best effort (channels-redis drops messages when a group's buffer is full),
so every event can also be derived from the stored job: a client that reconnects gets
`events_for_state(job)` first and continues from there.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def job_group(job_id) -> str:
    return f"job.{job_id}"


def publish(job_id, event: dict) -> None:
    """Send one event to everybody watching the job. Never raises: a lost progress
    message must not fail a paid-for generation."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(job_group(job_id), {"type": "job.event", "event": event})
    except Exception:  # noqa: BLE001 - the broker of events being down is not the job's failure
        logger.warning("Could not publish %s event for job %s", event.get("type"), job_id, exc_info=True)


def terminal_event(job) -> dict:
    if job.state == job.State.SUCCEEDED:
        return {"type": "succeeded", "video_url": job.video_url(), "poster_url": job.poster_url()}
    if job.state == job.State.CANCELLED:
        return {"type": "cancelled"}
    return {"type": "failed", "reason": job.error_message or "The job failed."}


def events_for_state(job) -> list[dict]:
    """The events that bring a newly connected client up to the job's stored state."""
    State = job.State
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
