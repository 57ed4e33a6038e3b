"""Safety and provenance records: every moderation decision, video reports, team
suspensions, and the watermark identifier of every video."""

from django.conf import settings
from django.db import models


class Review(models.TextChoices):
    """Where an item of the staff moderation queue stands."""

    PENDING = "pending", "Waiting for review"
    DISMISSED = "dismissed", "Reviewed: nothing wrong"
    CONFIRMED = "confirmed", "Reviewed: violation confirmed"  # prompt flags
    TAKEN_DOWN = "taken_down", "Reviewed: video taken down"  # video reports


class ModerationDecision(models.Model):
    """One prompt checked by the policy, whatever the outcome: allow, flag or refuse, and
    the rule that decided it. Flagged decisions are the moderation queue's prompt items."""

    class Outcome(models.TextChoices):
        ALLOW = "allow", "Allowed"
        FLAG = "flag", "Allowed, flagged for review"
        REFUSE = "refuse", "Refused"

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="moderation_decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    via_api = models.BooleanField(default=False)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    category = models.CharField(max_length=50, blank=True, default="")
    rule = models.CharField(max_length=200, blank=True, default="")  # e.g. "term:minors/…" or "classifier"
    # The job a flagged (or allowed) prompt went on to create, linked once it exists.
    job = models.ForeignKey("generation.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    review = models.CharField(max_length=12, choices=Review.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["team", "outcome", "created_at"]), models.Index(fields=["review"])]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.category or 'no category'}) for {self.team}"


class VideoReport(models.Model):
    """Someone viewing a shared video reported it."""

    class Reason(models.TextChoices):
        DECEPTIVE = "deceptive", "Deceptive or impersonates a real person"
        SEXUAL = "sexual", "Sexual content"
        VIOLENCE = "violence", "Violence or gore"
        HATE = "hate", "Hate or harassment"
        RIGHTS = "rights", "Infringes my rights (copyright, likeness)"
        OTHER = "other", "Something else"

    job = models.ForeignKey("generation.Job", on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True, default="")
    review = models.CharField(max_length=12, choices=Review.choices, default=Review.PENDING)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["review"])]


class Suspension(models.Model):
    """A team's generation is suspended while `lifted_at` is empty."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="suspensions")
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            # At most one active suspension per team, even under concurrent refusals.
            models.UniqueConstraint(fields=["team"], condition=models.Q(lifted_at__isnull=True), name="one_active_suspension_per_team"),
        ]

    def __str__(self) -> str:
        return f"Suspension of {self.team} ({'lifted' if self.lifted_at else 'active'})"


class WatermarkRecord(models.Model):
    """The random identifier marked into a job's video. Random (not derived from the job
    or the team), so the mark itself reveals nothing to whoever decodes it."""

    mark_id = models.BigIntegerField(unique=True)
    # Kept when the job is deleted: the video may live on elsewhere, and the verifier can
    # still say that Framecast made it, with which model and when.
    job = models.OneToOneField("generation.Job", null=True, on_delete=models.SET_NULL, related_name="watermark")
    model_name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.mark_id:08x} → job {self.job_id}"
