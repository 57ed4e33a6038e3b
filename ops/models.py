"""The operator dashboard's own records: the audit log of staff actions, and daily rollups
of job cost that keep the money pages fast on millions of jobs (ops.rollups)."""

from django.conf import settings
from django.db import models

from billing.models import AppendOnlyModel


class AuditEntry(AppendOnlyModel):
    """One staff action: who, what, on which target, why, when. Never edited or deleted."""

    append_only_refusal = "The audit log is append-only."

    class Action(models.TextChoices):
        CREDITS_ADJUST = "credits_adjust", "Adjusted credits"
        TEAM_SUSPEND = "team_suspend", "Suspended a team"
        TEAM_RESTORE = "team_restore", "Restored a team"
        EXPORT_JOBS = "export_jobs", "Exported jobs"
        EXPORT_LEDGER = "export_ledger", "Exported ledger entries"
        MODERATION_DECISION = "moderation", "Decided on a flagged prompt or reported video"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text too: removing a staff account must not erase who did what.
    staff_email = models.EmailField()
    action = models.CharField(max_length=20, choices=Action.choices)
    target_type = models.CharField(max_length=30, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    target_label = models.CharField(max_length=200, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)


    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.staff_email} {self.action} {self.target_label}"


class JobCostDaily(models.Model):
    """Jobs that ended on `day` (UTC) for one model and pool: counts, GPU time, cost and the
    video-seconds delivered. Rebuilt per day by ops.rollups.rollups_refresh."""

    day = models.DateField()
    model_name = models.CharField(max_length=100)
    pool = models.CharField(max_length=50)
    jobs = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    gpu_seconds = models.FloatField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    video_seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["day", "model_name", "pool"]
        constraints = [models.UniqueConstraint(fields=["day", "model_name", "pool"], name="one_rollup_per_day_model_pool")]


class RolledDay(models.Model):
    """A day whose JobCostDaily rows are complete (a day without jobs has none)."""

    day = models.DateField(primary_key=True)
    computed_at = models.DateTimeField()


class StorageSweep(models.Model):
    """One run of the orphan file sweep (ops.sweeps): what it found and what it removed."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleting = models.BooleanField()  # False: a dry run, which only counts
    grace_hours = models.PositiveIntegerField()
    scanned = models.PositiveIntegerField(default=0)
    orphans = models.PositiveIntegerField(default=0)
    orphan_bytes = models.BigIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    young = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-pk"]
