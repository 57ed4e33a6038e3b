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
