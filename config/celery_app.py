"""The Celery application: web processes send jobs with it, GPU workers consume them.

GPU hosts run: celery -A config worker -Q gpu.<pool> --pool solo --concurrency 1
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("framecast")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic tasks, all in one place, run by one `celery -A config beat` process. A run that
# waited longer than its interval expires: the next one does its work.
app.conf.beat_schedule = {
    "reap-lost-jobs": {"task": "gpu_workers.reap_lost_jobs", "schedule": 30.0, "options": {"expires": 30}},
    "retry-webhooks": {"task": "generation.retry_webhooks", "schedule": 15.0, "options": {"expires": 15}},
    "billing.report_usage": {"task": "billing.report_usage", "schedule": 60.0, "options": {"expires": 60}},
}
