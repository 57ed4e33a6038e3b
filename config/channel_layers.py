"""The embedded channel layer used when no REDIS_URL is set (`make run`).

Channels' InMemoryChannelLayer keeps asyncio queues that belong to the ASGI server's
event loop. The embedded GPU worker runs in a thread of the same process and publishes
with `async_to_sync`, i.e. from another event loop; touching those queues from there is
not thread-safe (a waiting consumer may never wake up). This layer remembers the loop its
consumers receive on and hands every send made from another loop over to it.
"""

import asyncio

from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    _home_loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, channel):
        self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def _on_home_loop(self, coroutine):
        home = self._home_loop
        if home is None or home is asyncio.get_running_loop() or home.is_closed():
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, home))

    async def send(self, channel, message):
        return await self._on_home_loop(super().send(channel, message))

    async def group_send(self, group, message):
        return await self._on_home_loop(super().group_send(group, message))
