"""The orphan file sweep as operators run it: hourly from beat and by hand
(`manage.py sweep_orphan_files`), each run recorded for the operations page."""

from datetime import timedelta

from django.conf import settings

from generation.storage import orphan_files_sweep

from .models import StorageSweep


def storage_sweep_run(*, delete: bool | None = None, grace_hours: int | None = None) -> StorageSweep:
    """Sweep the media storage for files no job references. Defaults from the settings:
    a dry run unless FRAMECAST_ORPHAN_SWEEP_DELETE, FRAMECAST_ORPHAN_GRACE_HOURS of grace."""
    delete = settings.FRAMECAST_ORPHAN_SWEEP_DELETE if delete is None else delete
    grace_hours = settings.FRAMECAST_ORPHAN_GRACE_HOURS if grace_hours is None else grace_hours
    report = orphan_files_sweep(grace=timedelta(hours=grace_hours), delete=delete)
    return StorageSweep.objects.create(
        deleting=delete, grace_hours=grace_hours, scanned=report.scanned, orphans=report.orphans,
        orphan_bytes=report.orphan_bytes, removed=report.removed, young=report.young, unknown=report.unknown,
    )
