"""The only code that changes a team's credits.

Every function here runs in a transaction, locks the team's BillingAccount row first
(`select_for_update`), changes its buckets and appends one CreditEntry. The database
refuses a negative bucket, so even a bug here cannot overdraw an account."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.db import update_returning

from .models import BillingAccount, CreditEntry, JobCharge, UsageReport
from .plans import default_plan

Kind = CreditEntry.Kind
PERIOD = timedelta(days=30)


class InsufficientCredits(Exception):
    def __init__(self, needed: int, available: int):
        super().__init__(f"This needs {needed} credits; the team has {available}.")
        self.needed, self.available = needed, available


def account_for_team(team, *, lock: bool = False) -> BillingAccount:
    """The team's billing account (created on the default plan with its first credits),
    renewed first if a plan period without a Stripe subscription has ended."""
    account = BillingAccount.objects.filter(team=team)
    if lock:
        account = account.select_for_update()
    account = account.select_related("plan").first()
    if account is None:
        with transaction.atomic():
            account, created = BillingAccount.objects.select_for_update().get_or_create(
                team=team, defaults={"plan": default_plan(), "current_period_end": timezone.now() + PERIOD}
            )
            if created:
                _append(account, Kind.GRANT, subscription=account.plan.monthly_credits, note=f"{account.plan.name} plan")
    elif not account.stripe_subscription_id and account.current_period_end and account.current_period_end <= timezone.now():
        # Plans without a Stripe subscription (Free, or set by staff) renew on first use.
        with transaction.atomic():
            account = BillingAccount.objects.select_for_update().select_related("plan").get(pk=account.pk)
            if account.current_period_end <= timezone.now():
                _renew(account, reference="", period_end=timezone.now() + PERIOD)
    return account


def _append(
    account: BillingAccount,
    kind: str,
    *,
    subscription: int = 0,
    purchased: int = 0,
    held: int = 0,
    job_id=None,
    actor: str = "",
    reference: str = "",
    note: str = "",
    at=None,
) -> CreditEntry:
    """Apply bucket deltas to the (locked) account and record them (as of `at`, default
    now). The arithmetic happens in the database, so even a caller that forgot the lock
    cannot write a stale balance; the CHECK constraints refuse a negative one. The new
    balance comes back from the same UPDATE."""
    at = at or timezone.now()
    buckets = ("subscription_credits", "purchased_credits", "held_credits", "updated_at")
    (updated,) = update_returning(
        BillingAccount.objects.filter(pk=account.pk),
        fields=buckets,
        subscription_credits=F("subscription_credits") + subscription,
        purchased_credits=F("purchased_credits") + purchased,
        held_credits=F("held_credits") + held,
        updated_at=at,
    )
    for name in buckets:
        setattr(account, name, getattr(updated, name))
    return CreditEntry.objects.create(
        created_at=at,
        account=account,
        kind=kind,
        amount=subscription + purchased,
        subscription_delta=subscription,
        purchased_delta=purchased,
        held_delta=held,
        balance_after=account.available,
        job_id=job_id,
        actor=actor,
        reference=reference,
        note=note,
    )


def _renew(account: BillingAccount, *, reference: str, period_end) -> None:
    if account.subscription_credits:
        _append(account, Kind.EXPIRY, subscription=-account.subscription_credits, reference=reference)
    _append(account, Kind.GRANT, subscription=account.plan.monthly_credits, reference=reference, note=f"{account.plan.name} plan")
    account.current_period_end = period_end
    account.save(update_fields=["current_period_end", "updated_at"])


@transaction.atomic
def subscription_renew(team, *, reference: str, period_end) -> BillingAccount:
    """A new period: unused plan credits expire and the plan's monthly credits are granted.
    Purchased credits are untouched. Idempotent per `reference` (e.g. a Stripe invoice id)."""
    account = account_for_team(team, lock=True)
    if reference and account.entries.filter(kind=Kind.GRANT, reference=reference).exists():
        return account
    _renew(account, reference=reference, period_end=period_end)
    return account


@transaction.atomic
def credits_purchase(team, *, credits: int, reference: str, actor: str = "") -> CreditEntry | None:
    """Add purchased credits (they never expire). Idempotent per `reference`."""
    account = account_for_team(team, lock=True)
    if reference and account.entries.filter(kind=Kind.PURCHASE, reference=reference).exists():
        return None
    return _append(account, Kind.PURCHASE, purchased=credits, reference=reference, actor=actor)


@transaction.atomic
def credits_adjust(team, *, amount: int, actor: str, note: str) -> CreditEntry:
    """Staff's manual change: positive adds purchased credits; negative takes plan credits
    first, then purchased ones, and never below zero."""
    if not note.strip():
        raise ValueError("A manual adjustment needs a note saying why.")
    account = account_for_team(team, lock=True)
    if amount >= 0:
        return _append(account, Kind.ADJUSTMENT, purchased=amount, actor=actor, note=note)
    if -amount > account.available:
        raise InsufficientCredits(-amount, account.available)
    from_subscription = min(account.subscription_credits, -amount)
    return _append(
        account, Kind.ADJUSTMENT, subscription=-from_subscription, purchased=amount + from_subscription, actor=actor, note=note
    )


def credits_hold(
    account: BillingAccount,
    *,
    job_id,
    price: int,
    video_seconds: float,
    api_key_id=None,
    member_id=None,
    model_name: str = "",
    pool: str = "",
) -> JobCharge:
    """Hold a job's price on a locked account: plan credits first, then purchased ones.
    Plans with metered overage may hold less than the price; the rest is billed as usage."""
    available = account.available
    if price > available and not account.plan.metered_overage:
        raise InsufficientCredits(price, available)
    covered = min(price, available)
    from_subscription = min(account.subscription_credits, covered)
    from_purchased = covered - from_subscription
    charge = JobCharge.objects.create(
        job_id=job_id,
        account=account,
        price_credits=price,
        from_subscription=from_subscription,
        from_purchased=from_purchased,
        overage_credits=price - covered,
        video_seconds=video_seconds,
        via_api_key_id=api_key_id,
        member_id=member_id,
        model_name=model_name,
        pool=pool,
    )
    _append(account, Kind.HOLD, subscription=-from_subscription, purchased=-from_purchased, held=covered, job_id=job_id)
    return charge


def _settle(job_id, to_state: str) -> JobCharge | None:
    # Settle once: of two racing settlements, only one changes the row (the job's own row,
    # updated first by both, already makes them take turns), and the charge comes back from
    # that UPDATE. The charge is settled at its entry's instant: a period or export window
    # then counts a job's spend exactly where the ledger has it (billing.budgets).
    settled_at = timezone.now()
    settled = update_returning(
        JobCharge.objects.filter(job_id=job_id, state=JobCharge.State.HELD), state=to_state, settled_at=settled_at
    )
    if not settled:
        return None  # no charge (a reused video), or settled already
    charge = settled[0]
    # (The plan comes in the same read: a capture asks whether it meters overage.)
    account = BillingAccount.objects.select_for_update(of=("self",)).select_related("plan").get(pk=charge.account_id)
    held = charge.from_subscription + charge.from_purchased
    if to_state == JobCharge.State.CAPTURED:
        _append(account, Kind.CAPTURE, held=-held, job_id=job_id, at=settled_at)
        if account.plan.metered_overage and charge.overage_credits:
            # Only the part of the video the balance did not pay for is billed as usage.
            UsageReport.objects.create(
                identifier=f"job-{job_id}",
                account=account,
                event_name=settings.STRIPE_METER_EVENT_NAME,
                value=round(charge.video_seconds * charge.overage_credits / charge.price_credits, 3),
            )
    else:
        _append(
            account,
            Kind.RELEASE,
            subscription=charge.from_subscription,
            purchased=charge.from_purchased,
            held=-held,
            job_id=job_id,
            at=settled_at,
        )
    if to_state == JobCharge.State.CAPTURED:
        from .budgets import spend_record  # budgets reads the ledger's charges; the ledger tells it of each capture

        spend_record(charge, at=settled_at)
    return charge


# Without a savepoint of their own inside the job's end (two round trips on every job's
# path): an error there fails the whole transaction, as it must.
@transaction.atomic(savepoint=False)
def credits_capture(job_id) -> JobCharge | None:
    """The job succeeded: its held credits are spent."""
    return _settle(job_id, JobCharge.State.CAPTURED)


@transaction.atomic(savepoint=False)
def credits_release(job_id) -> JobCharge | None:
    """The job failed or was cancelled: its held credits return to where they came from."""
    return _settle(job_id, JobCharge.State.RELEASED)
