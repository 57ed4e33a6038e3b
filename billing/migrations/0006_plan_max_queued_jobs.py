import tomllib
from pathlib import Path

from django.db import migrations, models

PLANS_FILE = Path(__file__).resolve().parent.parent / "plans.toml"


def caps_from_plans_file(apps, schema_editor):
    """Existing plans take their cap from billing/plans.toml at once (the field's default
    of 10 would refuse a Business team's 11th queued job until `sync_plans` ran)."""
    Plan = apps.get_model("billing", "Plan")
    with PLANS_FILE.open("rb") as file:
        rows = tomllib.load(file)["plans"]
    for row in rows:
        if "max_queued_jobs" in row:
            Plan.objects.filter(slug=row["slug"]).update(max_queued_jobs=row["max_queued_jobs"])


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_jobcharge_member'),
    ]

    operations = [
        migrations.AddField(
            model_name='plan',
            name='max_queued_jobs',
            field=models.PositiveIntegerField(default=10, help_text='Jobs waiting to start (queued or throttled) a team may have; beyond it, 429 queue_full.'),
        ),
        migrations.RunPython(caps_from_plans_file, migrations.RunPython.noop),
    ]
