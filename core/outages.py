"""When the database is away (an outage, a failover, or no pooled connection free in time):
one test for it, the retry that workers use to ride it out, and the answer users get.

A request the database cannot serve gets 503 with Retry-After, not a 500: the REST API and
the OpenAI-compatible API in their JSON shapes (their DRF exception handlers, and
`server_error` for whatever happens outside a DRF view), the studio a plain page that
needs no database to render.
"""

import logging
import sys
import time
from collections.abc import Callable

import psycopg
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

from .errors import API_PREFIXES
from .request_id import current_request_id

logger = logging.getLogger(__name__)

# Django wraps psycopg's errors (psycopg_pool.PoolTimeout is an OperationalError); the raw
# ones are listed for code that reaches psycopg outside Django's wrapper.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
RETRY_AFTER_SECONDS = 5
MESSAGE = "Framecast is temporarily unavailable. Please try again in a few seconds."


def database_unavailable(error: BaseException | None) -> bool:
    return isinstance(error, DATABASE_UNAVAILABLE)


def retrying_while_database_unavailable(action: Callable, *, seconds: float, what: str, on_wait: Callable | None = None):
    """action(), tried again with backoff (0.5 s doubling to 5 s) while the database is
    away, for up to `seconds`; then the last error is raised. Each retry starts on a new
    connection. Inside a transaction it does not retry (that would replay half of one), and
    `action` must be safe to repeat when an earlier try's commit went unanswered."""
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            return action()
        except DATABASE_UNAVAILABLE as error:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning("Database unavailable while %s (%r); retrying in %.1f s", what, error, delay)
            if on_wait is not None:
                on_wait(error)  # may raise to stop waiting
        reset_connection()
        time.sleep(delay)
        delay = min(delay * 2, 5)


def reset_connection() -> None:
    """Drop this thread's connection (broken or not), so the next query opens a new one."""
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a connection the outage already cut
        logger.debug("Closing a broken connection failed", exc_info=True)
    close_old_connections()


def unavailable_response(request) -> HttpResponse:
    """The 503 for `request`: JSON on the APIs, the studio's page elsewhere."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path_info.startswith("/openai/"):
        body = {"message": MESSAGE, "type": "server_error", "param": None, "code": "service_unavailable"}
    elif request.path_info.startswith(API_PREFIXES):
        body = {"type": "service_unavailable", "message": MESSAGE}
    else:
        # Renders without the request: the usual context (the user, the team) needs the database.
        return HttpResponse(render_to_string("503.html"), status=503, headers=headers)
    body["request_id"] = current_request_id.get()
    return JsonResponse({"error": body}, status=503, headers=headers)


def server_error(request):
    """handler500: a database outage is a 503 (see above); anything else Django's 500."""
    error = sys.exc_info()[1]
    if database_unavailable(error):
        return _answer_outage(request, error)
    return defaults.server_error(request)


def _answer_outage(request, error) -> HttpResponse:
    logger.warning("Database unavailable: %s %s answered 503 (%r)", request.method, request.path_info, error)
    return unavailable_response(request)


class DatabaseOutageMiddleware:
    """A view that the database failed answers 503 (handler500 covers the middleware:
    under ASGI Django reports a view's exception to handler500 from another thread, where
    the exception is no longer known)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return _answer_outage(request, exception) if database_unavailable(exception) else None
