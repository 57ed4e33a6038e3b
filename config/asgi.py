"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

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
