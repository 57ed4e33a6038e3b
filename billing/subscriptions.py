"""A team's Stripe subscription: reflecting Stripe's state on the BillingAccount, and the
owner's plan changes for a team that already subscribes.

Stripe is the source of truth for a subscription. `subscription_apply` takes the
subscription as Stripe has it *now* and makes the account match, so applying it twice, or
after an older event, ends in the same state."""

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership

from .checkout import (
    BillingRefused,
    checkout_subscription,
    has_live_subscription,
    overage_price_id,
    require_billing_manager,
)
from .ledger import PERIOD, account_for_team, subscription_renew
from .models import BillingAccount, Plan
from .plans import default_plan
from .stripe_client import stripe_client, stripe_configured

Status = BillingAccount.Status

# Stripe's statuses → ours. "incomplete" (first payment not through yet) is absent on
# purpose: such a subscription changes nothing until it becomes active.
STATUSES = {
    "active": Status.ACTIVE,
    "trialing": Status.TRIALING,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "paused": Status.PAST_DUE,
    "canceled": Status.CANCELED,
    "incomplete_expired": Status.CANCELED,
}


class UnknownPrice(Exception):
    """A subscription's price matches no plan (Stripe and the plans are out of sync)."""


def dig(obj: Any, *path, default=None):
    """obj[a][b]…, or `default` where a step is missing or None (Stripe omits and nulls freely)."""
    for key in path:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return default
        if obj is None:
            return default
    return obj


def as_datetime(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def subscription_items(subscription: dict) -> list[dict]:
    return dig(subscription, "items", "data", default=[])


def item_is_metered(item: dict) -> bool:
    return dig(item, "price", "recurring", "usage_type") == "metered"


def subscription_flat_item(subscription: dict) -> dict | None:
    """The item of the plan's flat monthly price. A plan with metered overage has a second,
    metered item beside it, which bills usage and says nothing about the plan."""
    return next((item for item in subscription_items(subscription) if not item_is_metered(item)), None)


def subscription_period_end(subscription: dict) -> datetime | None:
    # Since API version 2025-03-31 the period lives on the subscription's items.
    item = subscription_flat_item(subscription) or dig(subscription, "items", "data", 0)
    return as_datetime(dig(item, "current_period_end") or dig(subscription, "current_period_end"))


def subscription_current(subscription_id: str, snapshot: dict | None = None) -> dict | None:
    """The subscription as Stripe has it now; the event's snapshot only if it cannot be read."""
    if not stripe_configured():
        return snapshot
    return stripe_client().v1.subscriptions.retrieve(subscription_id).to_dict()


def _account_for(subscription: dict) -> BillingAccount | None:
    """The (locked) account the subscription belongs to: by its customer, which Framecast
    creates per team, else by the team id written into its metadata at checkout."""
    accounts = BillingAccount.objects.select_for_update().select_related("plan", "team")
    customer = subscription.get("customer")
    account = accounts.filter(stripe_customer_id=customer).first() if customer else None
    team_id = dig(subscription, "metadata", "team_id")
    if account is None and team_id and str(team_id).isdigit():
        account = accounts.filter(team_id=int(team_id)).first()
    return account


@transaction.atomic
def subscription_apply(subscription: dict) -> BillingAccount | None:
    """Make the team's account match `subscription` (a Stripe subscription as a dict).
    Returns the account, or None when no team has this subscription."""
    account = _account_for(subscription)
    if account is None:
        return None
    status = STATUSES.get(subscription["status"])
    is_current = account.stripe_subscription_id == subscription["id"]
    if status is None:
        return account
    if status == Status.CANCELED:
        # An old subscription ending (or one never attached) leaves the current one alone.
        if is_current:
            _subscription_end(account, subscription["id"])
        return account
    price = dig(subscription_flat_item(subscription), "price", "id")
    plan = Plan.objects.filter(stripe_price_id=price).first() if price else None
    if plan is None:
        raise UnknownPrice(
            f"Subscription {subscription['id']} has price {price!r}, which no plan has. Run `manage.py sync_stripe`."
        )
    account.plan = plan
    account.status = status
    account.stripe_subscription_id = subscription["id"]
    account.stripe_customer_id = account.stripe_customer_id or subscription.get("customer") or ""
    account.current_period_end = subscription_period_end(subscription) or account.current_period_end
    account.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    account.save(
        update_fields=[
            "plan", "status", "stripe_subscription_id", "stripe_customer_id", "current_period_end",
            "cancel_at_period_end", "updated_at",
        ]
    )
    return account


def _subscription_end(account: BillingAccount, subscription_id: str) -> None:
    """Back to the Free plan: the paid plan's credits expire and Free's are granted (purchased
    credits stay). Free then renews on its own, as it has no subscription."""
    account.plan = default_plan()
    account.status = Status.CANCELED
    account.stripe_subscription_id = ""
    account.cancel_at_period_end = False
    account.current_period_end = timezone.now() + PERIOD
    account.save(
        update_fields=["plan", "status", "stripe_subscription_id", "cancel_at_period_end", "current_period_end", "updated_at"]
    )
    subscription_renew(account.team, reference=f"{subscription_id}:ended", period_end=timezone.now() + PERIOD)


def subscription_sync(subscription_id: str, snapshot: dict | None = None) -> BillingAccount | None:
    """Read the subscription from Stripe and apply it."""
    subscription = subscription_current(subscription_id, snapshot)
    return subscription_apply(subscription) if subscription else None


# --- The owner's plan changes -------------------------------------------------------------


def plan_choose(*, membership: Membership, plan: Plan, success_url: str, cancel_url: str) -> tuple[str | None, str]:
    """An owner picked `plan` on the Billing page. Returns (URL to send them to, or None;
    what happened). Without a subscription a paid plan goes through Checkout; with one, the
    subscription is changed in place (or, for Free, set to end with its period)."""
    require_billing_manager(membership)
    account = account_for_team(membership.team)
    if not has_live_subscription(account):
        if plan.price_cents == 0:
            raise BillingRefused(f"The team is already on the {plan.name} plan.")
        return checkout_subscription(membership=membership, plan=plan, success_url=success_url, cancel_url=cancel_url), ""
    if plan.price_cents == 0:
        account = subscription_cancel(membership=membership)
        ends = account.current_period_end
        return None, f"Your {account.plan.name} subscription ends on {ends:%Y-%m-%d}; the team then moves to {plan.name}."
    if plan.pk == account.plan_id and not account.cancel_at_period_end:
        raise BillingRefused(f"The team is already on the {plan.name} plan.")
    account = subscription_change_plan(membership=membership, plan=plan)
    return None, f"The team is now on the {account.plan.name} plan."


def _subscription_update(account: BillingAccount, params: dict) -> BillingAccount:
    client = stripe_client()
    subscription = client.v1.subscriptions.update(account.stripe_subscription_id, params).to_dict()
    # Reflected at once for the owner's next page; the webhook that follows says the same.
    return subscription_apply(subscription) or account


def subscription_change_plan(*, membership: Membership, plan: Plan) -> BillingAccount:
    """Move the team's subscription to `plan`; also undoes a pending cancellation.

    Credits are prepaid, so nothing is prorated (a refund for "unused time" would refund
    credits already spent). An upgrade starts a new period now at the full new price, and its
    paid invoice grants the new plan's credits; a downgrade keeps this period's credits and
    costs less, with fewer credits, from the next renewal."""
    require_billing_manager(membership)
    account = account_for_team(membership.team)
    if not has_live_subscription(account):
        raise BillingRefused("This team has no subscription to change: choose a plan to subscribe.")
    if not plan.stripe_price_id or plan.price_cents == 0:
        raise BillingRefused(f"The {plan.name} plan cannot be subscribed to (it has no Stripe price).")
    overage = overage_price_id(plan)
    current = stripe_client().v1.subscriptions.retrieve(account.stripe_subscription_id).to_dict()
    params = {
        "items": _items_for_plan(current, plan, overage=overage),
        "proration_behavior": "none",
        "cancel_at_period_end": False,
    }
    if plan.price_cents > account.plan.price_cents:
        params["billing_cycle_anchor"] = "now"
    return _subscription_update(account, params)


def _items_for_plan(subscription: dict, plan: Plan, *, overage: str | None) -> list[dict]:
    """The item changes that put `subscription` on `plan`: its flat price on the flat item and,
    for metered overage, its metered price on a metered item (added if there is none); other
    metered items are removed, so a plan without overage bills none."""
    flat = subscription_flat_item(subscription)
    changes = [{"id": flat["id"], "price": plan.stripe_price_id} if flat else {"price": plan.stripe_price_id, "quantity": 1}]
    metered = [item for item in subscription_items(subscription) if item_is_metered(item)]
    keep = None
    if overage:
        keep = next((item for item in metered if dig(item, "price", "id") == overage), None)
        if keep is None and metered:
            keep = metered[0]  # another plan's (or an older) overage price: move the item over
            changes.append({"id": keep["id"], "price": overage})
        elif keep is None:
            changes.append({"price": overage})  # metered: no quantity
    changes += [{"id": item["id"], "deleted": True} for item in metered if item is not keep]
    return changes


def subscription_cancel(*, membership: Membership) -> BillingAccount:
    """End the team's subscription when its paid period ends (no refund, nothing lost now)."""
    require_billing_manager(membership, paying=False)
    account = account_for_team(membership.team)
    if not has_live_subscription(account):
        raise BillingRefused("This team has no subscription to cancel.")
    return _subscription_update(account, {"cancel_at_period_end": True})
