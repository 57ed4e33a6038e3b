"""Live progress events, pushed to a job's websocket group.

Delivery is best effort (channels-redis drops messages when a group's buffer is full),
so every event can also be derived from the stored job: a client that reconnects gets
`payloads.events_for_state(job)` first and continues from there.
"""

import asyncio
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# How long a publish waits for the channel layer before it gives the event up.
PUBLISH_TIMEOUT_SECONDS = 10.0

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def job_group(job_id) -> str:
    return f"job.{job_id}"


def publish(job_id, event: dict) -> None:
    """Send one event to everybody watching the job. Never raises: a lost progress
    message must not fail a paid-for generation."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "job.event", "event": event}
    try:
        if _in_event_loop():  # (async_to_sync refuses this, as it always has: logged below)
            async_to_sync(layer.group_send)(job_group(job_id), message)
        else:
            future = asyncio.run_coroutine_threadsafe(layer.group_send(job_group(job_id), message), _publisher_loop())
            try:
                future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
            except TimeoutError:
                future.cancel()
                raise
    except Exception:  # noqa: BLE001 - the broker of events being down is not the job's failure
        logger.warning("Could not publish %s event for job %s", event.get("type"), job_id, exc_info=True)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a thread of its own, that every publish from sync
    code runs on. `async_to_sync` would start a thread and an event loop per call, and
    channels-redis opens its connections per event loop: each step event paid for a new
    Redis connection. Events are sent one at a time, in order (publish waits for each)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="event-publisher", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop
