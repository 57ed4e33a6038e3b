"""Billing's periodic work, run by Celery beat.

Scheduled in config/celery_app.py. Run one beat process per deployment and a worker for
the default queue:
    celery -A config beat
    celery -A config worker -Q celery --concurrency 1
"""

from celery import shared_task

from .usage import usage_reports_send


@shared_task(name="billing.report_usage", ignore_result=True)
def report_usage() -> int:
    """Send unsent metered usage to Stripe (idempotent: see billing.usage)."""
    return usage_reports_send().sent
