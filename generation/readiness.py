"""Whether a pool has a worker ready to start a job now (warmed up, not shutting down). A
queued job of a pool with none waits for a GPU to start, and the studio says so.

Workers belong to gpu_workers, above generation in the layers, so the composition root
names the function that knows: settings.FRAMECAST_POOL_READINESS, (pool name) -> bool."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@cache
def _reader():
    return import_string(settings.FRAMECAST_POOL_READINESS)


def pool_has_ready_worker(pool: str) -> bool:
    return bool(_reader()(pool))
