"""Live progress events, pushed to a job's websocket group.

Delivery is best effort (channels-redis drops messages when a group's buffer is full),
so every event can also be derived from the stored job: a client that reconnects gets
`payloads.events_for_state(job)` first and continues from there.
"""

import asyncio
import atexit
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# How long the publisher waits for the channel layer before it gives an event up.
PUBLISH_TIMEOUT_SECONDS = 10.0
# Events waiting to be sent, at most: past it (the layer is down or far behind) new ones
# are dropped, with a warning. A reconnecting client catches up from the stored job.
MAX_PENDING_EVENTS = 10_000


def job_group(job_id) -> str:
    return f"job.{job_id}"


def publish(job_id, event: dict) -> None:
    """Send one event to everybody watching the job, without waiting for it: the event is
    handed to this process's publisher (`_Publisher`), which sends events one at a time,
    in the order they were published. Never raises: a lost progress message must not fail
    a paid-for generation, nor slow its steps down."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "job.event", "event": event}
    if _in_event_loop():  # (async_to_sync refuses this, as it always has: logged)
        try:
            async_to_sync(layer.group_send)(job_group(job_id), message)
        except Exception:  # noqa: BLE001
            logger.warning("Could not publish %s event for job %s", event.get("type"), job_id, exc_info=True)
        return
    _publisher().put(layer, job_group(job_id), message, what=f"{event.get('type')} event for job {job_id}")


def flush(timeout: float = PUBLISH_TIMEOUT_SECONDS) -> bool:
    """Wait until every event published so far has been sent (or given up); False if that
    took longer than `timeout`. A worker calls it before it exits."""
    publisher = _current
    return True if publisher is None or publisher.pid != os.getpid() else publisher.flush(timeout)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Publisher:
    """One event loop per process, on a thread of its own, that sends every event published
    from sync code. `async_to_sync` would start a thread and an event loop per call, and
    channels-redis opens its connections per event loop (each step event paid for a new
    Redis connection); waiting for each send cost the worker a round trip per event (per
    denoising step, and three times on a job's path from claim to `succeeded`)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue | None = None
        self._ready = threading.Event()
        self._lock = threading.Condition()
        self.published = self.done = 0
        threading.Thread(target=self._run, name="event-publisher", daemon=True).start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._queue = asyncio.Queue()
        self.loop.call_soon(self._ready.set)
        self.loop.run_until_complete(self._send_forever())

    def put(self, layer, group: str, message: dict, *, what: str) -> None:
        with self._lock:
            if self.published - self.done >= MAX_PENDING_EVENTS:
                logger.warning("Dropped the %s: %d events are waiting for the channel layer", what, MAX_PENDING_EVENTS)
                return
            self.published += 1
        self.loop.call_soon_threadsafe(self._queue.put_nowait, (layer, group, message, what))

    async def _send_forever(self) -> None:
        while True:
            layer, group, message, what = await self._queue.get()
            try:
                await asyncio.wait_for(layer.group_send(group, message), PUBLISH_TIMEOUT_SECONDS)
            except Exception:  # noqa: BLE001 - the broker of events being down is not the job's failure
                logger.warning("Could not publish the %s", what, exc_info=True)
            finally:
                with self._lock:
                    self.done += 1
                    self._lock.notify_all()

    def flush(self, timeout: float) -> bool:
        with self._lock:
            target = self.published
            return self._lock.wait_for(lambda: self.done >= target, timeout)


_current_lock = threading.Lock()
_current: _Publisher | None = None


def _publisher() -> _Publisher:
    global _current
    with _current_lock:
        if _current is None or _current.pid != os.getpid():  # a forked child starts its own
            _current = _Publisher()
        return _current


# A process that exits right after a job (a worker told to stop) still sends its last events.
atexit.register(flush, timeout=2.0)
