from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0015_lora"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="engine_job_id",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
    ]
