"""Paying through Stripe: Checkout for a subscription or a credit pack, and the Customer
Portal for cards, invoices and cancelling.

Only owners may (`Perm.MANAGE_BILLING`), and paying needs a verified email address. These
functions only start a payment: plans and credits change when Stripe's webhook says the
payment went through (billing.webhooks)."""

from accounts.hygiene import email_verified_required_message
from accounts.models import Membership
from accounts.permissions import Perm, require
from core.errors import Refusal

from .ledger import account_for_team
from .models import BillingAccount, CreditPack, Plan
from .stripe_client import stripe_client, stripe_configured


class BillingRefused(Refusal):
    """A billing action that cannot be done as asked; the message says why and what to do."""


def require_billing_manager(membership: Membership | None, *, paying: bool = True) -> None:
    """Owners only (PermissionDenied otherwise); for payments, with a verified email."""
    require(membership, Perm.MANAGE_BILLING)
    if not stripe_configured():
        raise BillingRefused("Online payments are not set up on this server, so plans and credits cannot be bought here.")
    if paying and (message := email_verified_required_message(membership.user)):
        raise BillingRefused(message)


def has_live_subscription(account: BillingAccount) -> bool:
    return bool(account.stripe_subscription_id) and account.status != BillingAccount.Status.CANCELED


def customer_ensure(*, account: BillingAccount, email: str) -> str:
    """The team's Stripe Customer id, created on first need and stored on the account."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    team = account.team
    customer = stripe_client().v1.customers.create(
        {"name": team.name, "email": email, "metadata": {"team_id": str(team.pk)}}
    )
    # Two owners clicking at once may each create a customer; the first stored one wins.
    BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(stripe_customer_id=customer.id)
    account.refresh_from_db(fields=["stripe_customer_id"])
    return account.stripe_customer_id


def _price_id(item: Plan | CreditPack) -> str:
    if not item.stripe_price_id:
        raise BillingRefused(
            f"{item.name} cannot be bought yet: it has no Stripe price. An operator must run `manage.py sync_stripe`."
        )
    return item.stripe_price_id


def overage_price_id(plan: Plan) -> str | None:
    """The metered price billing `plan`'s overage; None for a plan without metered overage."""
    if not plan.metered_overage:
        return None
    if not plan.stripe_overage_price_id:
        raise BillingRefused(
            f"{plan.name} cannot be bought yet: its overage has no Stripe price. An operator must run `manage.py sync_stripe`."
        )
    return plan.stripe_overage_price_id


def subscription_line_items(plan: Plan) -> list[dict]:
    """What a subscription to `plan` holds: its flat monthly price and, for metered overage,
    the metered price that bills the meter's usage (Stripe takes no quantity for that one)."""
    items = [{"price": _price_id(plan), "quantity": 1}]
    if overage := overage_price_id(plan):
        items.append({"price": overage})
    return items


def checkout_subscription(*, membership: Membership, plan: Plan, success_url: str, cancel_url: str) -> str:
    """Start a Stripe Checkout for a subscription to `plan`; returns the URL to send the owner to."""
    require_billing_manager(membership)
    account = account_for_team(membership.team)
    if plan.price_cents == 0:
        raise BillingRefused(f"The {plan.name} plan is free: there is nothing to pay.")
    if has_live_subscription(account):
        raise BillingRefused("This team already has a subscription: change its plan instead of starting a new one.")
    line_items = subscription_line_items(plan)
    team_id = str(membership.team_id)
    session = stripe_client().v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer_ensure(account=account, email=membership.user.email),
            "client_reference_id": team_id,
            "line_items": line_items,
            "metadata": {"team_id": team_id, "plan": plan.slug},
            # Copied onto the subscription, so its own events name the team too.
            "subscription_data": {"metadata": {"team_id": team_id}},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    return session.url


def checkout_pack(*, membership: Membership, pack: CreditPack, success_url: str, cancel_url: str) -> str:
    """Start a one-time Stripe Checkout for a credit pack; returns the URL to send the owner to."""
    require_billing_manager(membership)
    account = account_for_team(membership.team)
    price = _price_id(pack)
    team_id = str(membership.team_id)
    session = stripe_client().v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer": customer_ensure(account=account, email=membership.user.email),
            "client_reference_id": team_id,
            "line_items": [{"price": price, "quantity": 1}],
            # The credits as offered now: a pack edited before the webhook arrives must not
            # change what this payment bought.
            "metadata": {"team_id": team_id, "pack": pack.slug, "credits": str(pack.credits)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    return session.url


def portal_session(*, membership: Membership, return_url: str) -> str:
    """A Stripe Customer Portal session (cards, invoices, cancelling); returns its URL."""
    require_billing_manager(membership, paying=False)
    account = account_for_team(membership.team)
    if not account.stripe_customer_id:
        raise BillingRefused("This team has no payment details yet: subscribe to a plan or buy credits first.")
    session = stripe_client().v1.billing_portal.sessions.create(
        {"customer": account.stripe_customer_id, "return_url": return_url}
    )
    return session.url



def invoices_recent(account: BillingAccount, *, limit: int = 12) -> list[dict]:
    """The team's latest Stripe invoices (number, date, amount, status, link); [] without a
    customer. Raises stripe.StripeError if Stripe cannot be read."""
    if not stripe_configured() or not account.stripe_customer_id:
        return []
    invoices = stripe_client().v1.invoices.list({"customer": account.stripe_customer_id, "limit": limit})
    return [invoice.to_dict() for invoice in invoices.data]
