import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse


class Speed(models.TextChoices):
    STANDARD = "standard", "Standard"
    # Diffusers' First-Block Cache skips the transformer's work on steps whose first block
    # barely changed: faster and cheaper, at a small cost in detail.
    FAST = "fast", "Fast (cheaper)"
    # A few-step distillation adapter on the same model, no guidance (models.toml
    # [models.turbo]): much faster and cheaper, may lose fine motion.
    TURBO = "turbo", "Turbo (fewest steps)"


class JobState(models.TextChoices):
    # Accepted, but beyond the plan's concurrent-job limit: waits for a slot to free.
    THROTTLED = "throttled", "Waiting for a free slot"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    ENCODING = "encoding", "Encoding"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    """One text-to-video request. Its state changes only through generation.services."""

    State = JobState
    Speed = Speed

    # The whole state machine: which state may follow which. services.job_transition is
    # the only writer of `state` and refuses anything not listed here.
    TRANSITIONS: dict[str, frozenset[str]] = {
        State.THROTTLED: frozenset({State.QUEUED, State.FAILED, State.CANCELLED}),
        State.QUEUED: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
        # Back to QUEUED: the worker was lost and the job is retried (gpu_workers reaper), or
        # its worker is shutting down and handed it back (services.job_requeue_preempted).
        State.RUNNING: frozenset({State.ENCODING, State.QUEUED, State.FAILED, State.CANCELLED}),
        State.ENCODING: frozenset({State.SUCCEEDED, State.QUEUED, State.FAILED, State.CANCELLED}),
        State.SUCCEEDED: frozenset(),
        State.FAILED: frozenset(),
        State.CANCELLED: frozenset(),
    }
    # The timestamp each state stamps when it is entered.
    STATE_TIMESTAMPS: dict[str, str] = {
        State.QUEUED: "queued_at",
        State.RUNNING: "started_at",
        State.ENCODING: "encoding_at",
        State.SUCCEEDED: "finished_at",
        State.FAILED: "finished_at",
        State.CANCELLED: "finished_at",
    }
    TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
    # Jobs that take one of the plan's concurrent slots.
    ACTIVE = frozenset({State.QUEUED, State.RUNNING, State.ENCODING})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    # Set for jobs submitted through the REST API: usage is metered per key.
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True, default="")
    seed = models.BigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    num_frames = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    steps = models.PositiveIntegerField()
    guidance = models.FloatField()
    speed = models.CharField(max_length=10, choices=Speed.choices, default=Speed.STANDARD)
    model_name = models.CharField(max_length=100)
    pool = models.CharField(max_length=50)
    # A digest of everything that decides the frames (model, prompts, seed, shape, steps,
    # guidance): a later identical request of the team reuses this job's video.
    request_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    reused_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A remix re-generates the frames of `remixed_from` with this job's prompt (video to
    # video); `strength` is how far it may move from them (0: the source as is, 1: all new).
    remixed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="remixes"
    )
    strength = models.FloatField(null=True, blank=True)
    # A reference image the first frame is conditioned on (image to video).
    input_image = models.FileField(upload_to="inputs/%Y/%m/%d/", blank=True)
    # The team LoRAs applied on top of the model, as recorded at submission (they may be
    # deleted later): [{"id", "name", "scale", "file" (storage name), "sha256"}]; null: none.
    loras = models.JSONField(null=True, blank=True)
    # Called back (Standard Webhooks) when the job starts and ends; `metadata` is the
    # client's own, returned as given.
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # The plan's queue priority (0-9) and the resulting place in the pool's queue: workers
    # take the queued job with the smallest key (see FRAMECAST_PRIORITY_HEAD_START_SECONDS).
    priority = models.PositiveSmallIntegerField(default=0)
    dispatch_key = models.FloatField(null=True, blank=True)

    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    progress_step = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)  # = created_at unless it was throttled first
    started_at = models.DateTimeField(null=True, blank=True)
    encoding_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts that a worker's shutdown (a deploy, a spot reclaim, a scale-in) handed back to
    # the queue at a step boundary: they do not count against FRAMECAST_MAX_ATTEMPTS, and
    # their GPU time is ours, never the customer's (kept here for operators).
    preemptions = models.PositiveIntegerField(default=0)
    preempted_gpu_seconds = models.FloatField(default=0)
    worker = models.CharField(max_length=200, blank=True, default="")
    # The job's id at the pool's inference engine (pools of engine openai_videos), while this
    # attempt's call is out: a retry deletes it there (an orphan) before submitting anew.
    engine_job_id = models.CharField(max_length=200, blank=True, default="")
    # Shown to the user (never a traceback) / kept for operators.
    error_message = models.CharField(max_length=500, blank=True, default="")
    error_detail = models.TextField(blank=True, default="")

    # Stored under jobs/<id>/ by generation/storage.py (one name per file and attempt, so
    # every file of a job can be found and deleted); upload_to is the older files' layout.
    video = models.FileField(upload_to="videos/%Y/%m/%d/", blank=True)
    poster = models.FileField(upload_to="posters/%Y/%m/%d/", blank=True)
    # A grid of evenly spaced frames, made with the MP4 (previews, moderation review).
    spritesheet = models.FileField(upload_to="spritesheets/%Y/%m/%d/", blank=True)
    # The price quoted at submission and held from the team's credits (billing.ledger).
    price_credits = models.PositiveIntegerField(default=0)
    # Set while the video is shared by public link (/s/<token>/): random, unguessable, and
    # cleared to turn sharing off, so that an old link stays dead (generation/sharing.py).
    share_token = models.CharField(max_length=64, blank=True, default="")
    # Set when staff take the video down after a report (generation.sharing.job_take_down):
    # it may then never be shared again. The video stays in the team's gallery.
    taken_down_at = models.DateTimeField(null=True, blank=True)
    # Seconds from the claim to the first denoising step (model load, conditioning): a
    # warm worker's is near zero; a cold start's is what the user waited through.
    load_seconds = models.FloatField(null=True, blank=True)
    inference_seconds = models.FloatField(null=True, blank=True)
    encode_seconds = models.FloatField(null=True, blank=True)
    # What the job cost us: seconds it waited, seconds it held a GPU (claim to end, this
    # attempt), and those GPU-seconds at the pool's price per GPU-hour.
    queue_seconds = models.FloatField(null=True, blank=True)
    gpu_seconds = models.FloatField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "-created_at"]),
            models.Index(fields=["pool", "state", "dispatch_key"], name="job_dispatch_order"),
            # The claim's turn order: when each team was last served in a pool.
            models.Index(fields=["team", "pool", "-started_at"], name="job_team_last_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=JobState.values), name="job_state_is_known"
            ),
            models.CheckConstraint(
                condition=models.Q(width__gt=0, height__gt=0, num_frames__gt=0, fps__gt=0, steps__gt=0),
                name="job_shape_is_positive",
            ),
            models.CheckConstraint(condition=models.Q(seed__gte=0, seed__lte=2**32 - 1), name="job_seed_is_uint32"),
            models.CheckConstraint(
                condition=models.Q(strength__isnull=True) | models.Q(strength__gt=0, strength__lte=1),
                name="job_strength_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(progress_step__lte=models.F("steps")), name="job_progress_within_steps"
            ),
            models.CheckConstraint(
                condition=~models.Q(state="succeeded") | ~models.Q(video=""), name="job_succeeded_has_video"
            ),
            models.UniqueConstraint(
                fields=["share_token"], condition=~models.Q(share_token=""), name="job_share_token_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.fps

    def get_absolute_url(self) -> str:
        return reverse("generation:job_detail", args=[self.id])

    def video_url(self) -> str:
        return reverse("generation:job_video", args=[self.id])

    def poster_url(self) -> str:
        return reverse("generation:job_poster", args=[self.id])


class IdempotencyRecord(models.Model):
    """The first response to a POST made with an `Idempotency-Key`, replayed for 24 hours to
    retries of the same request (same key and body, same team). The unique constraint makes
    two concurrent identical requests create one job: the second waits for the first."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "key"], name="one_idempotency_key_per_team")]


class WebhookDelivery(models.Model):
    """One event to POST to a job's webhook_url (or a budget's), retried with backoff until delivered or
    given up; every attempt is kept (WebhookAttempt) and shown to the team."""

    id = models.CharField(primary_key=True, max_length=40)  # the `webhook-id` header: msg_...
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="webhook_deliveries")
    # None for the team's account events (budget.threshold_reached).
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event_type = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    # generation.payloads.WEBHOOK_PAYLOAD_VERSION when it was made (also in the payload).
    payload_version = models.CharField(max_length=20, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)  # None: nothing more to try
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]


class Lora(models.Model):
    """A team's own LoRA adapter for one model: a safetensors file checked by
    generation.loras before it was stored (under teams/<team id>/loras/), applied to that
    model's jobs that ask for it at a scale. Deleting one hides it at once; its row and file
    go once no waiting or running job refers to it (generation.loras.loras_purge_deleted)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="loras")
    model_name = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    # The storage name (default storage: S3 when configured); written by generation.loras.
    file = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    rank = models.PositiveIntegerField()
    modules = models.PositiveIntegerField(default=0, help_text="Layers it adapts.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"], condition=models.Q(deleted_at__isnull=True), name="lora_name_unique_in_team"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_name})"
