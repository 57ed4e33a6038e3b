"""Revenue as the Stripe webhooks record it (billing.Payment): each paid invoice and credit
pack once, split into subscription and metered usage, whatever the credits did. The real
`stripe` SDK and signed webhooks against the fake Stripe of tests/fake_stripe.py."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import CreditPack, Payment
from ops import metrics

from .fake_stripe import deliver, fake_stripe  # noqa: F401 (fixture)
from .test_stripe_billing import account_of, checkout, deliver_all, owner, stripe_catalog, subscribed  # noqa: F401

pytestmark = pytest.mark.django_db


def payments() -> list[tuple[str, int]]:
    return sorted(Payment.objects.values_list("kind", "amount_cents"))


def test_a_subscription_invoice_is_recorded_once_as_subscription_revenue(owner, stripe_catalog):
    _, events = subscribed(owner, stripe_catalog, plan="creator")
    account = account_of(owner.personal_team)
    assert payments() == [("subscription", 1500)]
    payment = Payment.objects.get()
    assert (payment.account, payment.stripe_id) == (account, events["invoice.paid"]["data"]["object"]["id"])

    deliver(stripe_catalog, events["invoice.paid"])  # Stripe delivers it again
    deliver(stripe_catalog, {**events["invoice.paid"], "id": "evt_resent"})  # a new event for the same invoice
    assert payments() == [("subscription", 1500)]
    today = dict(metrics.money().windows)["Today"]
    assert today.revenue_by_kind["subscription"] == 15


def test_renewals_and_credit_packs_add_revenue(owner, stripe_catalog):
    client, _ = subscribed(owner, stripe_catalog, plan="creator")
    deliver_all(stripe_catalog, stripe_catalog.subscription_renew(account_of(owner.personal_team).stripe_subscription_id).values())
    deliver_all(stripe_catalog, checkout(client, stripe_catalog, pack="pack-500").values())
    pack = CreditPack.objects.get(slug="pack-500")
    assert payments() == [("pack", pack.price_cents), ("subscription", 1500), ("subscription", 1500)]


def test_a_failed_payment_is_no_revenue(owner, stripe_catalog):
    subscribed(owner, stripe_catalog, plan="creator")
    deliver_all(stripe_catalog, stripe_catalog.subscription_renew(
        account_of(owner.personal_team).stripe_subscription_id, paid=False).values())
    assert payments() == [("subscription", 1500)]


def test_metered_usage_on_an_invoice_is_usage_revenue_even_when_it_grants_no_credits(owner, stripe_catalog):
    subscribed(owner, stripe_catalog, plan="pro")
    account = account_of(owner.personal_team)
    invoice = stripe_catalog.objects["invoice"][stripe_catalog.objects["subscription"][account.stripe_subscription_id]["latest_invoice"]]
    (flat,) = invoice["lines"]["data"]
    usage_line = {**flat, "id": "il_usage", "amount": 350, "pricing": {"type": "price_details", "price_details": {
        "price": account.plan.stripe_overage_price_id, "product": account.plan.stripe_product_id}}}
    with_usage = {**invoice, "id": "in_with_usage", "billing_reason": "subscription_cycle", "amount_paid": 4900 + 350,
                  "lines": {**invoice["lines"], "data": [flat, usage_line]}}
    usage_only = {**invoice, "id": "in_usage_only", "billing_reason": "subscription_update", "amount_paid": 120,
                  "lines": {**invoice["lines"], "data": [{**usage_line, "amount": 120}]}}
    deliver(stripe_catalog, stripe_catalog.event("invoice.paid", with_usage))
    assert deliver(stripe_catalog, stripe_catalog.event("invoice.paid", usage_only)).json()["status"] == "ignored"

    assert sorted(Payment.objects.filter(stripe_id__in=["in_with_usage", "in_usage_only"])
                  .values_list("stripe_id", "kind", "amount_cents")) == [
        ("in_usage_only", "usage", 120), ("in_with_usage", "subscription", 4900), ("in_with_usage", "usage", 350),
    ]
    assert Payment.objects.filter(kind="usage").values_list("account", flat=True).distinct().get() == account.pk
    assert datetime.now(UTC) - Payment.objects.get(stripe_id="in_usage_only").paid_at < timedelta(minutes=1)
