"""Billing's periodic work, run by Celery beat.

Run one beat process per deployment and a worker for the default queue:
    celery -A config beat
    celery -A config worker -Q celery --concurrency 1
"""

from celery import shared_task

from config.celery_app import app

from .usage import usage_reports_send

REPORT_USAGE_EVERY_SECONDS = 60.0


@shared_task(name="billing.report_usage", ignore_result=True)
def report_usage() -> int:
    """Send unsent metered usage to Stripe (idempotent: see billing.usage)."""
    return usage_reports_send().sent


# Merged into (not replacing) whatever schedule the settings or other apps define.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "billing.report_usage": {
        "task": "billing.report_usage",
        "schedule": REPORT_USAGE_EVERY_SECONDS,
        # A run that waited longer than the interval is dropped: the next one does its work.
        "options": {"expires": REPORT_USAGE_EVERY_SECONDS},
    },
}
