"""Indexes on generation's Job table that the dashboard's queries need, made here because
generation's migrations belong to that app. PostgreSQL only (CONCURRENTLY is not used: the
migration runs in a transaction); on SQLite, the development database, nothing is done.

Each covers the columns its query reads (INCLUDE), so PostgreSQL answers from the index
alone instead of visiting a million-row table once per job:
- ops_job_finished_at: jobs that ended in a time range, for the cost rollups and today's
  live figures (ops.rollups.job_cost_rows);
- ops_job_failed_finished: failures of the last days ranked by reason (partial: failed only);
- ops_job_started_at: queue waits of the jobs that started in the last hour.
"""

from django.db import migrations

INDEXES = {
    "ops_job_finished_at": (
        "generation_job (finished_at) INCLUDE (model_name, pool, state, reused_from_id, gpu_seconds, cost_usd, "
        "num_frames, fps)"
    ),
    "ops_job_failed_finished": "generation_job (finished_at) INCLUDE (error_message) WHERE state = 'failed'",
    "ops_job_started_at": "generation_job (started_at) INCLUDE (pool, priority, queue_seconds)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, target in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0001_audit_and_rollups"),
        ("generation", "0008_job_speed"),
    ]

    operations = [migrations.RunPython(create, drop)]
