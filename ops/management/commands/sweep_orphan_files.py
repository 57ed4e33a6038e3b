"""manage.py sweep_orphan_files [--delete] [--grace-hours N]: find stored files that no job
references (a killed attempt's, a rolled-back submission's); a dry run unless --delete."""

from django.conf import settings
from django.core.management.base import BaseCommand

from ops.sweeps import storage_sweep_run


class Command(BaseCommand):
    help = "Count, or with --delete remove, stored files no job references that are older than the grace period."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Remove the orphans (default: only count them).")
        parser.add_argument(
            "--grace-hours", type=int, default=settings.FRAMECAST_ORPHAN_GRACE_HOURS,
            help="Leave files younger than this alone (default FRAMECAST_ORPHAN_GRACE_HOURS).",
        )

    def handle(self, *args, delete: bool, grace_hours: int, **options):
        if grace_hours < 0:
            self.stderr.write("--grace-hours must be 0 or more.")
            raise SystemExit(2)
        sweep = storage_sweep_run(delete=delete, grace_hours=grace_hours)
        verb = "removed" if delete else "would remove (dry run; --delete to remove)"
        self.stdout.write(
            f"{sweep.scanned} files scanned: {sweep.orphans} orphans older than {grace_hours} h "
            f"({sweep.orphan_bytes} bytes), {verb} {sweep.orphans if not delete else sweep.removed}; "
            f"{sweep.young} younger kept, {sweep.unknown} not Framecast's left alone."
        )
