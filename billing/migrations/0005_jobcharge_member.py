from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def member_from_jobs(apps, schema_editor):
    """Charges made before the column existed: their member is their job's creator."""
    JobCharge = apps.get_model("billing", "JobCharge")
    Job = apps.get_model("generation", "Job")
    creator = Job.objects.filter(pk=OuterRef("job_id")).values("created_by_id")[:1]
    JobCharge.objects.filter(member_id=None).update(member_id=Subquery(creator))


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0004_payment"),
        ("generation", "0010_job_remix_image_spritesheet"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobcharge",
            name="member_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(member_from_jobs, migrations.RunPython.noop),
    ]
