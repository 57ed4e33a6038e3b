from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("gpu_workers", "0002_heartbeat_finishing_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="workerheartbeat",
            name="embedding_cache_hits",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="workerheartbeat",
            name="embedding_cache_misses",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
