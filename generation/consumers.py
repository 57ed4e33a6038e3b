from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from accounts.selectors import active_team

from . import events
from .selectors import job_for_team

# Close codes (4000-4999 are the application's): the browser sees why it was refused.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    """Streams one job's events to a member of the job's team."""

    group: str | None = None

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        # Join the group before reading the stored state: an event published in between
        # then arrives twice at worst, never not at all. Events wait in the channel until
        # connect() returns.
        self.group = events.job_group(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        catch_up = await self._catch_up(user, job_id)
        if catch_up is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        for event in catch_up:
            await self.send_json(event)

    @database_sync_to_async
    def _catch_up(self, user, job_id) -> list[dict] | None:
        """The events that describe the job's stored state, or None if the user's team
        has no such job."""
        try:
            job = job_for_team(active_team(user, self.scope.get("session")), job_id)
        except Http404:
            return None
        return events.events_for_state(job)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; clients have nothing to say on it.
        pass

    async def job_event(self, message):
        await self.send_json(message["event"])
