"""Live progress events, pushed to a job's websocket group.

Delivery is best effort (channels-redis drops messages when a group's buffer is full),
so every event can also be derived from the stored job: a client that reconnects gets
`payloads.events_for_state(job)` first and continues from there.
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
