"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class SyncStackASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware stack and the view run in one thread.

    Every view and most middleware here are synchronous. Django's own handler runs an
    async stack and hops between the event loop and the request's thread at each change of
    mode: about eight hops a request (each sync middleware's process_request and
    process_response, the CSRF view check, the view). Here the request makes one hop."""

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


# Django must be set up before anything imports models (the consumers do).
django.setup(set_prefix=False)
django_asgi_app = SyncStackASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from generation.consumers import bearer_key  # noqa: E402
from generation.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator:
    """Browsers authenticate websockets with the session cookie, so their Origin must be one
    of ours (no other site may ride on the cookie). API clients authenticate with a bearer
    key that no other site can send, and usually send no Origin at all."""

    def __init__(self, application):
        self.application = application
        self.browser = AllowedHostsOriginValidator(application)

    async def __call__(self, scope, receive, send):
        has_origin = any(name == b"origin" for name, _ in scope.get("headers", []))
        if bearer_key(scope) is not None and not has_origin:
            return await self.application(scope, receive, send)
        return await self.browser(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
