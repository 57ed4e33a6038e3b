from django.db import migrations, models


class Migration(migrations.Migration):
    """Every job a worker's finisher holds (one per finisher thread), not just one."""

    dependencies = [
        ('gpu_workers', '0004_heartbeat_phase'),
    ]

    operations = [
        migrations.AddField(
            model_name='workerheartbeat',
            name='finishing_job_ids',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
