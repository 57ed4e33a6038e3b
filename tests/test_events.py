"""generation.events: publish() hands each event to the process's publisher and returns at
once; the publisher sends events one at a time, in the order they were published."""

import asyncio
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from generation import events


class StalledLayer:
    """A channel layer whose sends wait until the test lets them through."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self.gate: asyncio.Event | None = None
        self.loop = None

    async def group_send(self, group, message):
        if self.gate is None:
            self.loop, self.gate = asyncio.get_running_loop(), asyncio.Event()
        await self.gate.wait()
        self.sent.append((group, message["event"]))

    def open(self):
        self.loop.call_soon_threadsafe(self.gate.set)


def test_publish_returns_while_the_layer_is_stalled_and_the_order_is_kept(monkeypatch):
    layer = StalledLayer()
    monkeypatch.setattr(events, "get_channel_layer", lambda: layer)
    job = "2c7a4e1e-0f59-4a59-9a1e-3c1c3f1e9d11"
    for i in range(1, 51):
        events.publish(job, {"type": "step", "i": i})  # none of these waits for the layer
    assert not events.flush(timeout=0.2)  # all 50 still wait behind the stalled first send
    assert layer.sent == []
    layer.open()
    assert events.flush(timeout=10)
    assert [event["i"] for _, event in layer.sent] == list(range(1, 51))
    assert {group for group, _ in layer.sent} == {f"job.{job}"}


def test_a_failing_layer_never_reaches_the_caller(monkeypatch, caplog):
    class Broken:
        async def group_send(self, group, message):
            raise ConnectionError("the channel layer is down")

    monkeypatch.setattr(events, "get_channel_layer", lambda: Broken())
    events.publish("2c7a4e1e-0f59-4a59-9a1e-3c1c3f1e9d11", {"type": "succeeded"})
    assert events.flush(timeout=10)
    assert "Could not publish the succeeded event for job 2c7a4e1e" in caplog.text


def test_events_from_several_threads_reach_a_watcher_of_the_job_in_each_threads_order():
    layer = get_channel_layer()  # the configured one: Redis in CI, in memory otherwise
    channel = async_to_sync(layer.new_channel)()
    job = "7d0b8a2c-5b7e-4a8e-8f7e-1b2c3d4e5f60"
    async_to_sync(layer.group_add)(events.job_group(job), channel)

    def publish_steps(thread: int) -> None:
        for i in range(20):
            events.publish(job, {"type": "step", "thread": thread, "i": i})

    threads = [threading.Thread(target=publish_steps, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events.flush(timeout=10)

    async def receive_all():
        return [(await asyncio.wait_for(layer.receive(channel), 5))["event"] for _ in range(60)]

    received = async_to_sync(receive_all)()
    for n in range(3):
        assert [event["i"] for event in received if event["thread"] == n] == list(range(20))
    async_to_sync(layer.group_discard)(events.job_group(job), channel)


def test_a_step_older_than_what_the_socket_already_showed_is_not_sent(alice, asgi_server):
    """A browser that (re)connects mid-job gets the stored step first; a step event sent
    before it read the job may still be on its way, and the bar must not move back."""
    import json

    from django.utils import timezone

    from generation.models import Job

    from .conftest import client_for, websocket_connect
    from .test_tenant_isolation import make_job

    job = make_job(alice, state=Job.State.RUNNING, started_at=timezone.now(), progress_step=12, steps=20, attempts=1)
    with websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", client_for(alice)) as socket:
        assert [json.loads(socket.recv(timeout=10)) for _ in range(2)] == [
            {"type": "started"}, {"type": "step", "i": 12, "n": 20, "eta_seconds": None},
        ]
        for i in (11, 12, 13):  # 11: published before the socket read the job
            events.publish(job.id, {"type": "step", "i": i, "n": 20, "eta_seconds": 1.0})
        events.publish(job.id, {"type": "preview", "i": 10, "image": "data:,"})
        events.publish(job.id, {"type": "queued"})  # handed back to the queue: a new attempt
        events.publish(job.id, {"type": "started"})
        events.publish(job.id, {"type": "step", "i": 1, "n": 20, "eta_seconds": 9.0})
        received = [json.loads(socket.recv(timeout=10)) for _ in range(5)]
    assert [(event["type"], event.get("i")) for event in received] == [
        ("step", 12), ("step", 13), ("queued", None), ("started", None), ("step", 1),
    ]
