"""Probes and the metrics scrape: /healthz (the process answers), /readyz (it can serve:
the database, the broker, the channel layer and the cache answer) and /metrics.

They are answered before host validation and the HTTPS redirect, because load balancers,
orchestrators and Prometheus reach a replica by its internal address over plain HTTP.
"""

import logging

from django.conf import settings
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# Each dependency gets this long to answer; a probe must answer before its own timeout.
CHECK_TIMEOUT_SECONDS = 3


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    from django.db import connection

    if connection.vendor == "postgresql" and connection.pool is not None:
        # Through the pool, but waiting no longer than a probe should for a connection.
        connection.pool.open()  # Django opens it at the first query; a probe may come first
        with connection.pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # a broken persistent connection is not reused by the next probe
        raise


def _check_broker() -> None:
    from config.celery_app import app

    if app.conf.broker_url.startswith("memory://"):
        return  # in this process: up while we are
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        client.ping()
    finally:
        client.close()


def _check_channel_layer() -> None:
    config = settings.CHANNEL_LAYERS["default"]
    if config["BACKEND"].startswith("channels_redis."):
        for host in config["CONFIG"]["hosts"]:
            _ping_redis(host if isinstance(host, str) else host["address"])


def _check_cache() -> None:
    from django.core.cache import cache

    cache.set("framecast:readyz", "1", 10)
    if cache.get("framecast:readyz") != "1":
        raise RuntimeError("the cache did not return what was just stored")


CHECKS = {
    "database": _check_database,
    "broker": _check_broker,
    "channel_layer": _check_channel_layer,
    "cache": _check_cache,
}


def readyz(request):
    """200 when every dependency answers; else 503 naming those that do not."""
    checks = {}
    for name, check in CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            # The reason goes to the log; the answer names only the dependency (it is public).
            logger.warning("Readiness: %s unreachable: %r", name, error)
            checks[name] = f"unreachable ({type(error).__name__})"
    down = [name for name, result in checks.items() if result != "ok"]
    body = {"status": "unavailable" if down else "ready", "checks": checks}
    if down:
        body["unavailable"] = down
    from core.outages import RETRY_AFTER_SECONDS  # what the API's own 503s say meanwhile

    return JsonResponse(body, status=503 if down else 200, headers={"Retry-After": str(RETRY_AFTER_SECONDS)} if down else None)


def _metrics(request):
    from ops.prometheus import metrics

    return metrics(request)


ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": _metrics}
# GET /ops/scaling/<pool>: for an autoscaler inside the cluster (KEDA's metrics-api scaler
# calls the Service by its internal name over plain HTTP), like /metrics.
SCALING_PREFIX = "/ops/scaling/"


def _endpoint(path: str):
    if path in ENDPOINTS:
        return ENDPOINTS[path]
    pool = path.removeprefix(SCALING_PREFIX)
    if path.startswith(SCALING_PREFIX) and pool and "/" not in pool:
        from ops.views import pool_scaling

        return lambda request: pool_scaling(request, pool)
    return None


class OperationsEndpointsMiddleware:
    """Answers GET/HEAD on ENDPOINTS; everything else goes on down the stack."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = _endpoint(request.path_info)
        if view is not None and request.method in {"GET", "HEAD"}:
            response = view(request)
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)
