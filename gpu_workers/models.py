from django.db import models


class WorkerHeartbeat(models.Model):
    """What each worker process last reported: the data behind the pool-status view, and
    how the reaper knows a worker is gone."""

    class Phase(models.TextChoices):
        # Loading its pool's models and running its warm-up generation: takes no job yet.
        WARMING = "warming", "Warming up"
        READY = "ready", "Ready"
        # Told to stop (SIGTERM): takes no new job, finishes or hands back the one in hand.
        STOPPING = "stopping", "Stopping"

    hostname = models.CharField(max_length=200, unique=True)
    pool = models.CharField(max_length=50, db_index=True)
    device = models.CharField(max_length=200)
    memory_used_mb = models.FloatField(default=0)
    current_job_id = models.UUIDField(null=True, blank=True)
    # The jobs its background finisher is encoding and storing (the previous ones, usually),
    # oldest first; finishing_job_id is the oldest of them (None when there is none).
    finishing_job_id = models.UUIDField(null=True, blank=True)
    finishing_job_ids = models.JSONField(default=list, blank=True)
    jobs_done = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.READY)
    # Prompt-embedding cache lookups since the worker process started (gpu_workers.embeddings).
    embedding_cache_hits = models.PositiveBigIntegerField(default=0)
    embedding_cache_misses = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["pool", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.pool})"
