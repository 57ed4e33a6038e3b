"""The Celery application: web processes send jobs with it, GPU workers consume them.

GPU hosts run: celery -A config worker -Q gpu.<pool> --pool solo --concurrency 1
"""

import os

from celery import Celery, signals
from django.conf import settings

from core import request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("framecast")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id travels with the tasks a request sends and the jobs it submits.
request_id.connect_signals()

_REAP_EVERY = settings.FRAMECAST_HEARTBEAT_STALE_SECONDS / 2

# Periodic tasks, all in one place, run by one `celery -A config beat` process. A run that
# waited longer than its interval expires: the next one does its work.
app.conf.beat_schedule = {
    # Twice per stale window (60 s by default): a lost worker's job waits at most 1.5 windows.
    "reap-lost-jobs": {"task": "gpu_workers.reap_lost_jobs", "schedule": _REAP_EVERY, "options": {"expires": _REAP_EVERY}},
    "retry-webhooks": {"task": "generation.retry_webhooks", "schedule": 15.0, "options": {"expires": 15}},
    "billing.report_usage": {"task": "billing.report_usage", "schedule": 60.0, "options": {"expires": 60}},
    "ops.refresh_rollups": {"task": "ops.refresh_rollups", "schedule": 300.0, "options": {"expires": 300}},
    "ops.sweep_orphan_files": {"task": "ops.sweep_orphan_files", "schedule": 3600.0, "options": {"expires": 3600}},
    # A deleted LoRA's file outlives it while a waiting video still needs it (generation.loras).
    "generation.purge_deleted_loras": {
        "task": "generation.purge_deleted_loras", "schedule": 600.0, "options": {"expires": 600},
    },
}


@signals.worker_init.connect
@signals.beat_init.connect
def _worker_sized_pool(**kwargs) -> None:
    """Worker and beat processes hold a few connections each (the task, the heartbeat, the
    finisher), not a web process's pool: DB_WORKER_POOL_MAX_SIZE. Set before their first
    query, which is when Django creates the pool."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["max_size"] = settings.DB_WORKER_POOL_MAX_SIZE
        pool["min_size"] = min(pool["min_size"], pool["max_size"])
