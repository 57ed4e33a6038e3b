"""Plans, credit packs, each team's billing account, its append-only credit ledger, job
charges (holds), Stripe event log, the usage outbox and the payments Stripe received.

A team's balance lives in BillingAccount's buckets and changes only through
billing.ledger, which locks the account row, writes one CreditEntry per change and keeps
`sum(entries.amount) == available` and `sum(entries.held_delta) == held_credits`."""

from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.db.models import Q


class Plan(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=50)
    price_cents = models.PositiveIntegerField(help_text="Monthly price in US cents.")
    monthly_credits = models.PositiveIntegerField()
    max_side = models.PositiveIntegerField(help_text="Largest width or height in pixels.")
    max_duration_seconds = models.PositiveIntegerField()
    max_steps = models.PositiveIntegerField()
    concurrent_jobs = models.PositiveIntegerField(help_text="Jobs running or queued at once; more wait as throttled.")
    backlog = models.PositiveIntegerField(help_text="Throttled jobs allowed to wait; beyond it, submissions get 429.")
    max_queued_jobs = models.PositiveIntegerField(
        default=10, help_text="Jobs waiting to start (queued or throttled) a team may have; beyond it, 429 queue_full."
    )
    queue_priority = models.PositiveSmallIntegerField(default=0, help_text="0 (lowest) to 9.")
    api_access = models.BooleanField(default=False)
    seats = models.PositiveIntegerField(default=1)
    metered_overage = models.BooleanField(
        default=False, help_text="Jobs beyond the balance run anyway and are billed as metered usage."
    )
    # REST API rate limits, per API key (or per member using the API from the browser).
    api_requests_per_minute = models.PositiveIntegerField(default=60)
    api_videos_per_minute = models.PositiveIntegerField(default=5)
    # Team LoRAs (generation.loras): how many a team keeps (0: the plan has none), their
    # largest rank and file size.
    max_loras = models.PositiveIntegerField(default=0)
    max_lora_rank = models.PositiveIntegerField(default=0)
    max_lora_mb = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)
    stripe_product_id = models.CharField(max_length=100, blank=True, default="")
    stripe_price_id = models.CharField(max_length=100, blank=True, default="")
    overage_cents_per_video_second = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=0,
        help_text="With metered overage: US cents per video-second beyond the balance.",
    )
    stripe_overage_price_id = models.CharField(
        max_length=100, blank=True, default="", help_text="The metered Stripe price that bills the overage."
    )

    class Meta:
        ordering = ["order", "price_cents"]

    def __str__(self) -> str:
        return self.name


class CreditPack(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=50)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)
    stripe_product_id = models.CharField(max_length=100, blank=True, default="")
    stripe_price_id = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["order", "credits"]

    def __str__(self) -> str:
        return self.name


class BillingAccount(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TRIALING = "trialing", "Trialing"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    team = models.OneToOneField("accounts.Team", on_delete=models.CASCADE, related_name="billing")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Buckets: subscription credits reset every period; purchased credits never expire;
    # held credits belong to jobs that have not ended yet.
    subscription_credits = models.IntegerField(default=0)
    purchased_credits = models.IntegerField(default=0)
    held_credits = models.IntegerField(default=0)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(subscription_credits__gte=0), name="subscription_credits_not_negative"),
            models.CheckConstraint(condition=Q(purchased_credits__gte=0), name="purchased_credits_not_negative"),
            models.CheckConstraint(condition=Q(held_credits__gte=0), name="held_credits_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.team} on {self.plan}"

    @property
    def available(self) -> int:
        return self.subscription_credits + self.purchased_credits


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(self.model.append_only_refusal)

    def delete(self):
        raise TypeError(self.model.append_only_refusal)


class AppendOnlyModel(models.Model):
    """Rows written once and kept: changing or deleting one, singly or in bulk, raises
    TypeError with `append_only_refusal`."""

    append_only_refusal = "These records are append-only."

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError(self.append_only_refusal)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(self.append_only_refusal)


class CreditEntry(AppendOnlyModel):
    """One change of a team's credits. Never updated or deleted."""

    append_only_refusal = "The credit ledger is append-only: write a new entry instead."

    class Kind(models.TextChoices):
        GRANT = "grant", "Plan credits granted"
        PURCHASE = "purchase", "Credits purchased"
        HOLD = "hold", "Held for a job"
        CAPTURE = "capture", "Spent on a job"
        RELEASE = "release", "Returned from a job"
        EXPIRY = "expiry", "Plan credits expired"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Change of the available balance (subscription + purchased), and of each bucket.
    amount = models.IntegerField()
    subscription_delta = models.IntegerField(default=0)
    purchased_delta = models.IntegerField(default=0)
    held_delta = models.IntegerField(default=0)
    balance_after = models.IntegerField()
    # Plain ids, not foreign keys: deleting a job or a user must not rewrite history.
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    actor = models.CharField(max_length=254, blank=True, default="")
    reference = models.CharField(max_length=200, blank=True, default="", help_text="e.g. a Stripe object id")
    note = models.CharField(max_length=500, blank=True, default="")
    # Now, unless the ledger gives the instant (a settlement dates its charge and its entry alike).
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "credit entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount=models.F("subscription_delta") + models.F("purchased_delta")),
                name="entry_amount_is_sum_of_buckets",
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="entry_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} → {self.balance_after}"


class JobCharge(models.Model):
    """What a job costs and where its credits came from; settled once, by capture or release."""

    class State(models.TextChoices):
        HELD = "held", "Held"
        CAPTURED = "captured", "Captured"
        RELEASED = "released", "Released"

    job_id = models.UUIDField(unique=True)
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="charges")
    price_credits = models.PositiveIntegerField()
    from_subscription = models.PositiveIntegerField(default=0)
    from_purchased = models.PositiveIntegerField(default=0)
    # The part of the price the balance did not cover, billed as metered usage instead.
    overage_credits = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField()
    via_api_key_id = models.BigIntegerField(null=True, blank=True)
    # The member who submitted the job (its usage row), kept after the job is deleted.
    member_id = models.BigIntegerField(null=True, blank=True)
    # What the job ran on, kept here for the usage export (also after the job is deleted).
    model_name = models.CharField(max_length=100, blank=True, default="")
    pool = models.CharField(max_length=50, blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.HELD, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The same instant as the capture's or release's CreditEntry (billing.ledger), so that
    # windows over charges and over the ledger count the same jobs.
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Budgets and the usage export sum a team's, a key's or a member's settled charges
        # over a period.
        indexes = [
            models.Index(fields=["account", "state", "settled_at"], name="charge_account_settled"),
            models.Index(fields=["via_api_key_id", "state", "settled_at"], name="charge_key_settled"),
            models.Index(fields=["member_id", "state", "settled_at"], name="charge_member_settled"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_credits=models.F("from_subscription") + models.F("from_purchased") + models.F("overage_credits")),
                name="charge_covers_price",
            )
        ]


class StripeEvent(models.Model):
    """Each Stripe webhook event, recorded once by its id, with how handling went."""

    class Status(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices)
    error = models.TextField(blank=True, default="")
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)


class UsageReport(models.Model):
    """Outbox of metered usage for Stripe: written in the transaction that captures a job,
    sent by a periodic task with the job id as Stripe's de-duplication identifier."""

    identifier = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="usage_reports")
    event_name = models.CharField(max_length=100)
    value = models.FloatField(help_text="Video seconds.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")


class Payment(models.Model):
    """Money Stripe collected, as the webhooks saw it paid: one row per paid invoice or
    checkout session and kind of revenue (an invoice can carry a plan's price and metered
    usage together). The operator dashboard's revenue; never edited."""

    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscriptions"
        PACK = "pack", "Credit packs"
        USAGE = "usage", "Metered usage"

    stripe_id = models.CharField(max_length=100, help_text="The paid invoice or checkout session.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Null when no team matches the Stripe customer: the money still came in.
    account = models.ForeignKey(BillingAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    paid_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-paid_at"]
        constraints = [models.UniqueConstraint(fields=["stripe_id", "kind"], name="one_payment_per_stripe_object_and_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:.2f} {self.currency} ({self.stripe_id})"

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_cents) / 100


class Budget(models.Model):
    """A spending limit set by a team's owner or admin on the whole team, one member or one
    API key, per UTC calendar day, week or month. `alert` budgets only notify; `lock`
    budgets also refuse new jobs that would take the period's spend past the amount.
    The rules are billing.budgets."""

    class Scope(models.TextChoices):
        TEAM = "team", "Team"
        MEMBER = "member", "Member"
        API_KEY = "api_key", "API key"

    class Period(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"

    class Mode(models.TextChoices):
        ALERT = "alert", "Alert only"
        LOCK = "lock", "Lock"

    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="budgets")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    # The member's user (their jobs in the studio and through the keys they made), or the key.
    member = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=100, blank=True, default="")
    amount_credits = models.PositiveIntegerField()
    period = models.CharField(max_length=5, choices=Period.choices)
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.ALERT)
    # Percentages of the amount, ascending; each fires once per period.
    thresholds = models.JSONField(default=list)
    # Where `budget.threshold_reached` events are POSTed (Standard Webhooks, the team's secret).
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "period", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="team", member=None, api_key=None)
                    | Q(scope="member", member__isnull=False, api_key=None)
                    | Q(scope="api_key", member=None, api_key__isnull=False)
                ),
                name="budget_target_matches_scope",
            ),
            models.CheckConstraint(condition=Q(amount_credits__gt=0), name="budget_amount_positive"),
            # One budget per target and period (a daily and a monthly one may coexist).
            models.UniqueConstraint(
                fields=["account", "period"], condition=Q(scope="team"), name="one_team_budget_per_period"
            ),
            models.UniqueConstraint(
                fields=["account", "member", "period"], condition=Q(scope="member"), name="one_member_budget_per_period"
            ),
            models.UniqueConstraint(
                fields=["api_key", "period"], condition=Q(scope="api_key"), name="one_key_budget_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_period_display()} budget of {self.amount_credits} credits ({self.scope})"


class BudgetAlert(models.Model):
    """A threshold of a budget reached in one period: the unique row is what makes each
    alert fire once, however many submissions race past it."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the amount.")
    amount_credits = models.PositiveIntegerField(help_text="The budget's amount when it fired.")
    used_credits = models.PositiveIntegerField(help_text="Spent + held, this job included, when it fired.")
    job_id = models.UUIDField(null=True, blank=True)
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="one_alert_per_budget_period_threshold")
        ]


class BudgetSpend(models.Model):
    """What a budget's scope spent (captured) in one period, kept up to date by each capture
    in the same locked transaction (billing.ledger), so the locked core of job_submit reads
    one row instead of summing a busy month's charges. Made from the charges themselves the
    first time it is needed in a period; dropped when the budget's period changes."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="spends")
    period_start = models.DateTimeField()
    spent_credits = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="one_spend_per_budget_and_period")]


class BudgetRefusals(models.Model):
    """How many submissions a lock budget refused on one UTC day (the staff money page)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="refusals")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "budget refusals"
        constraints = [models.UniqueConstraint(fields=["budget", "day"], name="one_refusal_count_per_budget_and_day")]
