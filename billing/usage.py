"""Metered usage to Stripe: drain the UsageReport outbox as Billing Meter events.

A row is written in the transaction that captures a job (billing.ledger) and marked sent
only after Stripe accepted it. A crash between the two sends it again next time, with the
same `identifier` (Stripe de-duplicates on it) and the same idempotency key (Stripe replays
its first answer): sent at least once, counted once."""

import logging
from dataclasses import dataclass

import stripe
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone

from .models import BillingAccount, CreditEntry, JobCharge, UsageReport
from .stripe_client import stripe_client, stripe_configured, stripe_error_text

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class UsageSendResult:
    sent: int = 0
    failed: int = 0


def _decimal(value: float) -> str:
    """Video seconds as Stripe's payload wants them: a plain decimal string, to the millisecond."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _record_failure(report: UsageReport, error: str) -> None:
    UsageReport.objects.filter(pk=report.pk).update(attempts=F("attempts") + 1, last_error=error[:2000])


def usage_reports_send(*, limit: int = BATCH) -> UsageSendResult:
    """Send the oldest unsent reports (up to `limit`); failures stay unsent, with their
    error and attempt count, for the next run. Two runs at once may both send a row: harmless,
    for the reason above."""
    if not stripe_configured():
        return UsageSendResult()
    client = stripe_client()
    sent = failed = 0
    pending = UsageReport.objects.filter(sent_at=None).select_related("account").order_by("created_at", "pk")[:limit]
    for report in pending:
        customer = report.account.stripe_customer_id
        if not customer:
            _record_failure(report, "The team has no Stripe customer, so its usage cannot be billed.")
            failed += 1
            continue
        try:
            client.v1.billing.meter_events.create(
                {
                    "event_name": report.event_name,
                    "payload": {"stripe_customer_id": customer, "value": _decimal(report.value)},
                    "identifier": report.identifier,
                    # When the usage happened, so it lands in that billing period.
                    "timestamp": int(report.created_at.timestamp()),
                },
                {"idempotency_key": f"framecast-usage-{report.identifier}"},
            )
        except stripe.StripeError as error:
            logger.warning("Usage report %s not sent: %s", report.identifier, error)
            _record_failure(report, stripe_error_text(error))
            failed += 1
            continue
        UsageReport.objects.filter(pk=report.pk, sent_at=None).update(
            sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        sent += 1
    return UsageSendResult(sent=sent, failed=failed)


# --- Usage this period, for the Billing page --------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    label: str
    jobs: int
    credits: int
    video_seconds: float


def period_start(account: BillingAccount):
    """When the current period's plan credits were granted (None before any grant)."""
    return (
        account.entries.filter(kind=CreditEntry.Kind.GRANT)
        .order_by("-created_at", "-pk")
        .values_list("created_at", flat=True)
        .first()
    )


def _rows(charges, field: str) -> list[dict]:
    return list(
        charges.values(field)
        .annotate(jobs=Count("pk"), credits=Sum("price_credits"), video_seconds=Sum("video_seconds"))
        .order_by("-credits", field)
    )


def usage_this_period(account: BillingAccount, *, since=None) -> tuple[list[UsageRow], list[UsageRow]]:
    """Credits spent and video-seconds made by succeeded jobs since `since`, per member and
    per API key."""
    from accounts.models import ApiKey, User

    charges = JobCharge.objects.filter(account=account, state=JobCharge.State.CAPTURED)
    if since is not None:
        charges = charges.filter(settled_at__gte=since)
    creator = User.objects.filter(pk=OuterRef("member_id")).values("email")[:1]
    by_member = [
        UsageRow(row["member"] or "(former member)", row["jobs"], row["credits"], row["video_seconds"])
        for row in _rows(charges.annotate(member=Subquery(creator)), "member")
    ]
    key_rows = _rows(charges.exclude(via_api_key_id=None), "via_api_key_id")
    key_ids = [row["via_api_key_id"] for row in key_rows]
    keys = {key.pk: key for key in ApiKey.objects.filter(team_id=account.team_id, pk__in=key_ids)}
    by_key = [
        UsageRow(
            str(keys[row["via_api_key_id"]]) if row["via_api_key_id"] in keys else "(deleted key)",
            row["jobs"],
            row["credits"],
            row["video_seconds"],
        )
        for row in key_rows
    ]
    return by_member, by_key
