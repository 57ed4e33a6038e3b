"""Videos taken down before the job had its own mark (generation.Job.taken_down_at) were
known only by their reports: give them the mark, so they stay unshareable."""

from django.db import migrations
from django.db.models import Max, OuterRef, Subquery
from django.db.models.functions import Coalesce, Now


def mark_taken_down(apps, schema_editor):
    Job = apps.get_model("generation", "Job")
    VideoReport = apps.get_model("safety", "VideoReport")
    decided = (
        VideoReport.objects.filter(job=OuterRef("pk"), review="taken_down")
        .values("job").annotate(at=Max("reviewed_at")).values("at")
    )
    Job.objects.filter(taken_down_at__isnull=True, reports__review="taken_down").update(
        taken_down_at=Coalesce(Subquery(decided), Now()), share_token=""
    )


class Migration(migrations.Migration):

    dependencies = [
        ("safety", "0001_initial"),
        ("generation", "0012_job_taken_down_at"),
    ]

    # Backwards there is nothing to undo: reversing generation 0012 drops the column.
    operations = [migrations.RunPython(mark_taken_down, migrations.RunPython.noop)]
