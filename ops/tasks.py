"""The dashboard's periodic work (scheduled in config/celery_app.py)."""

from celery import shared_task

from .rollups import rollups_refresh


@shared_task(name="ops.refresh_rollups", ignore_result=True)
def refresh_rollups() -> int:
    """Build missing daily cost rollups and rebuild the last two days (idempotent)."""
    return len(rollups_refresh())


@shared_task(name="ops.sweep_orphan_files", ignore_result=True)
def sweep_orphan_files() -> int:
    """Count (or, with FRAMECAST_ORPHAN_SWEEP_DELETE, remove) stored files no job references."""
    from .sweeps import storage_sweep_run

    return storage_sweep_run().orphans
