"""The dashboard's periodic work (scheduled in config/celery_app.py)."""

from celery import shared_task

from .rollups import rollups_refresh


@shared_task(name="ops.refresh_rollups", ignore_result=True)
def refresh_rollups() -> int:
    """Build missing daily cost rollups and rebuild the last two days (idempotent)."""
    return len(rollups_refresh())
