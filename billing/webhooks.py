"""Stripe's webhook: verify, record each event once by its id, handle it, record the outcome.

Stripe delivers events at least once and in no particular order. So:
- each event id is handled once: its StripeEvent row is claimed in the same transaction
  as the changes it causes (a duplicate arriving meanwhile waits on the unique id, then
  finds it done); a failed one is recorded as failed and handled again on Stripe's retry;
- subscription state is never taken from the event's snapshot but read again from Stripe
  (billing.subscriptions), so events applied late or twice end in the same state;
- credits are granted through the ledger's functions, idempotent per Stripe object id.
"""

import json
import logging
import time

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .ledger import credits_purchase, subscription_renew
from .models import BillingAccount, StripeEvent
from .revenue import payment_record_invoice, payment_record_pack
from .subscriptions import as_datetime, dig, subscription_sync

logger = logging.getLogger(__name__)

# Invoices that start a period of the plan (and so reset its credits): the first one, each
# renewal, and an upgrade (which restarts the period) — but only with a full-period charge:
# a proration-only invoice (a plan switched in the Portal) must not buy a month of credits.
RENEWING_INVOICES = {"subscription_create", "subscription_cycle", "subscription_update"}


# How far a signature's timestamp may be from now, either way (the SDK's default, 300 s).
SIGNATURE_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


class WebhookRejected(Exception):
    """Not a request Stripe signed with our secret: answered 400, nothing recorded."""


def event_verify(*, payload: bytes, signature: str) -> dict:
    """The event in `payload` if Stripe signed it with our secret (WebhookRejected otherwise)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejected("Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET is unset).")
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected(f"The Stripe-Signature header does not match this payload: {error}") from None
    except ValueError:
        raise WebhookRejected("The payload is not a JSON Stripe event.") from None
    _refuse_future_timestamp(signature)
    event = json.loads(payload)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookRejected("The payload is not a Stripe event (it has no id or type).")
    return event


def _refuse_future_timestamp(signature: str) -> None:
    """The SDK refuses a signature older than the tolerance but not one dated ahead of it,
    which would stay replayable until that date: refuse that side too. (The signature is
    verified, so its first `t=`, read as the SDK reads it, is Stripe's.)"""
    items = [item.split("=", 2) for item in signature.split(",")]
    timestamp = int(next(item[1] for item in items if item[0] == "t"))
    ahead = timestamp - time.time()
    if ahead > SIGNATURE_TOLERANCE_SECONDS:
        raise WebhookRejected(
            f"The Stripe-Signature timestamp is {ahead:.0f} s in the future, more than the "
            f"{SIGNATURE_TOLERANCE_SECONDS} s tolerance (check this server's clock)."
        )


def event_process(event: dict) -> tuple[StripeEvent, bool]:
    """Handle `event` unless it already was. Returns (its record, whether handled now).
    Raises what the handler raised, after recording the event as failed."""
    try:
        # The event's row, its handling and the changes it makes commit together. (Handling
        # may read a subscription from Stripe inside this transaction: one short request.)
        with transaction.atomic():
            record, created = StripeEvent.objects.select_for_update().get_or_create(
                event_id=event["id"], defaults={"type": event["type"], "status": StripeEvent.Status.FAILED, "payload": event}
            )
            if not created and record.status != StripeEvent.Status.FAILED:
                return record, False
            handler = HANDLERS.get(event["type"])
            reason = handler(dig(event, "data", "object", default={})) if handler else "not an event Framecast handles"
            record.status = StripeEvent.Status.IGNORED if reason else StripeEvent.Status.PROCESSED
            record.error = reason or ""
            record.processed_at = timezone.now()
            record.save(update_fields=["status", "error", "processed_at"])
            return record, True
    except Exception as error:
        logger.exception("Stripe event %s (%s) failed", event.get("id"), event.get("type"))
        if StripeEvent.objects.filter(event_id=event["id"]).exclude(status=StripeEvent.Status.FAILED).exists():
            raise  # handled meanwhile by another delivery: keep its outcome
        StripeEvent.objects.update_or_create(
            event_id=event["id"],
            defaults={
                "type": event["type"],
                "status": StripeEvent.Status.FAILED,
                "error": f"{error.__class__.__name__}: {error}",
                "payload": event,
                "processed_at": None,
            },
        )
        raise


# --- Handlers: each returns None when it acted, or why it did nothing (recorded as ignored).


def _account_for_team_id(team_id) -> BillingAccount | None:
    if not team_id or not str(team_id).isdigit():
        return None
    return BillingAccount.objects.select_related("team").filter(team_id=int(team_id)).first()


def _checkout_completed(session: dict) -> str | None:
    account = _account_for_team_id(session.get("client_reference_id") or dig(session, "metadata", "team_id"))
    if account is None:
        reference = session.get("client_reference_id")
        return f"No team matches checkout session {session.get('id')} (client_reference_id {reference!r})."
    if session.get("customer") and not account.stripe_customer_id:
        BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(stripe_customer_id=session["customer"])
    if session.get("mode") == "subscription":
        if not session.get("subscription"):
            return "The checkout session has no subscription yet."
        subscription_sync(_id(session["subscription"]))
        return None
    if session.get("mode") == "payment":
        if session.get("payment_status") != "paid":
            return f"Payment status is {session.get('payment_status')!r}; credits are added once it is paid."
        credits = dig(session, "metadata", "credits")
        if not str(credits).isdigit():
            return "The checkout session names no credits (not a Framecast credit pack)."
        credits_purchase(account.team, credits=int(credits), reference=session["id"], actor="stripe")
        payment_record_pack(session, account)
        return None
    return f"Checkout mode {session.get('mode')!r} is not used by Framecast."


def _subscription_changed(subscription: dict) -> str | None:
    account = subscription_sync(subscription["id"], snapshot=subscription)
    return None if account else f"No team has Stripe customer {subscription.get('customer')}."


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _invoice_subscription(invoice: dict) -> str | None:
    # Since API version 2025-03-31 an invoice names its subscription under `parent`.
    return _id(dig(invoice, "parent", "subscription_details", "subscription") or invoice.get("subscription"))


def _line_price(line: dict) -> str | None:
    # Since API version 2025-03-31 an invoice line names its price under `pricing`.
    return _id(dig(line, "pricing", "price_details", "price") or dig(line, "price"))


def _invoice_paid(invoice: dict) -> str | None:
    subscription_id = _invoice_subscription(invoice)
    if not subscription_id:
        payment_record_invoice(invoice)  # revenue, whatever the invoice was for
        return "Not a subscription invoice."
    account = subscription_sync(subscription_id)
    # Every paid invoice is revenue (proration and usage-only ones too), credits or not.
    payment_record_invoice(invoice)
    if account is None or account.stripe_subscription_id != subscription_id:
        return f"Subscription {subscription_id} is not a team's current subscription."
    if invoice.get("billing_reason") not in RENEWING_INVOICES:
        return f"An invoice for {invoice.get('billing_reason')!r} grants no plan credits."
    lines = [
        line for line in dig(invoice, "lines", "data", default=[])
        if not dig(line, "parent", "subscription_item_details", "proration", default=False)
    ]
    if not lines:
        return "A proration-only invoice grants no plan credits; the next renewal does."
    # Only the plan's flat price starts a period: a metered overage line bills usage of the
    # period that ended, and an invoice of usage alone grants nothing.
    full_period = [line for line in lines if _line_price(line) == account.plan.stripe_price_id]
    if not full_period:
        return "An invoice without the plan's monthly price (metered usage only) grants no plan credits."
    period_end = as_datetime(max((dig(line, "period", "end", default=0) for line in full_period), default=0))
    if period_end and account.current_period_end and period_end < account.current_period_end:
        return "The invoice is for an earlier period than the subscription's current one."
    subscription_renew(account.team, reference=invoice["id"], period_end=account.current_period_end)
    return None


def _invoice_payment_failed(invoice: dict) -> str | None:
    subscription_id = _invoice_subscription(invoice)
    if not subscription_id:
        return "Not a subscription invoice."
    # Stripe marks the subscription past_due; reading it back applies that (and quotas then
    # refuse new jobs), while a late failure of an invoice since paid changes nothing.
    account = subscription_sync(subscription_id)
    return None if account else f"Subscription {subscription_id} is not a team's."


HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
}
