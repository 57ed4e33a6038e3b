from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from accounts.api_keys import InvalidApiKey, apikey_authenticate
from accounts.selectors import active_team

from . import events, payloads
from .selectors import job_for_team

# Close codes (4000-4999 are the application's): the browser sees why it was refused.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def bearer_key(scope) -> str | None:
    """The API key of an `Authorization: Bearer fc_...` header, if the client sent one."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, key = value.decode(errors="replace").partition(" ")
            return key.strip() if scheme.lower() == "bearer" else None
    return None


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    """Streams one job's events to its team: a member signed in through the browser, or an
    API client with the team's key."""

    group: str | None = None
    # The highest step this connection has shown (None before the job runs, and again once
    # it is queued anew). Events are sent after the stored state they describe, by another
    # process, so a step published before this connection read the job can arrive after the
    # catch-up that already shows a later one: it is dropped, and the bar never moves back.
    shown_step: int | None = None

    async def connect(self):
        team = await self._team()
        if team is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        # Join the group before reading the stored state: an event published in between
        # then arrives twice at worst, never not at all. Events wait in the channel until
        # connect() returns.
        self.group = events.job_group(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        catch_up = await self._catch_up(team, job_id)
        if catch_up is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        for event in catch_up:
            self._shown(event)
            await self.send_json(event)

    @database_sync_to_async
    def _team(self):
        key = bearer_key(self.scope)
        if key is not None:
            try:
                return apikey_authenticate(key).team
            except InvalidApiKey:
                return None
        user = self.scope["user"]
        return active_team(user, self.scope.get("session")) if user.is_authenticated else None

    @database_sync_to_async
    def _catch_up(self, team, job_id) -> list[dict] | None:
        """The events that describe the job's stored state, or None if the team has no
        such job."""
        try:
            job = job_for_team(team, job_id)
        except Http404:
            return None
        return payloads.events_for_state(job)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; clients have nothing to say on it.
        pass

    async def job_event(self, message):
        event = message["event"]
        if event.get("type") in ("step", "preview") and self.shown_step is not None and event.get("i", 0) < self.shown_step:
            return  # older than what this connection already showed
        self._shown(event)
        await self.send_json(event)

    def _shown(self, event: dict) -> None:
        if event.get("type") == "step":
            self.shown_step = max(self.shown_step or 0, event.get("i", 0))
        elif event.get("type") in ("queued", "started", "throttled"):  # a new attempt counts from zero
            self.shown_step = None
