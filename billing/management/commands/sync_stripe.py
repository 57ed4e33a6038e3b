"""Create or update Stripe's catalogue from the plans and packs in the database.

Idempotent: products are found by their `framecast_key` metadata (or the id stored on the
row), prices by their lookup key, the meter by its event name; running it twice creates
nothing new. A price whose amount changed is replaced (Stripe prices are immutable): the
new one takes over the lookup key and the old one is archived, so existing subscribers
keep their price until moved.

A plan with metered overage also gets a monthly metered Price on the Billing Meter (lookup
key `framecast-plan-<slug>-overage`, `overage_cents_per_video_second` cents a unit), which
Checkout and plan changes put on the subscription beside the flat price, so the meter
events of billing.usage are billed."""

from decimal import Decimal

import stripe
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.models import CreditPack, Plan
from billing.stripe_client import StripeNotConfigured, stripe_client
from billing.subscriptions import dig

CURRENCY = "usd"


def _product_ensure(client, *, key: str, name: str, stored_id: str) -> tuple[dict, bool]:
    product = None
    if stored_id:
        try:
            product = client.v1.products.retrieve(stored_id).to_dict()
        except stripe.InvalidRequestError:
            product = None  # deleted in Stripe, or another Stripe account: look it up again
    if product is None:
        # Listing (unlike search) sees a product created a moment ago.
        for candidate in client.v1.products.list({"limit": 100}).auto_paging_iter():
            if dig(candidate, "metadata", "framecast_key") == key:
                product = candidate.to_dict()
                break
    if product is None:
        return client.v1.products.create({"name": name, "metadata": {"framecast_key": key}}).to_dict(), True
    if product.get("name") != name or not product.get("active", True):
        product = client.v1.products.update(product["id"], {"name": name, "active": True}).to_dict()
    return product, False


def _price_matches(price: dict, *, product_id: str, amount: int, monthly: bool) -> bool:
    interval = dig(price, "recurring", "interval")
    return (
        price.get("product") == product_id
        and price.get("unit_amount") == amount
        and price.get("currency") == CURRENCY
        and (interval == "month" if monthly else interval is None)
        and dig(price, "recurring", "usage_type") != "metered"
    )


def _price_ensure(client, *, product_id: str, lookup_key: str, amount: int, monthly: bool) -> tuple[dict, bool]:
    found = client.v1.prices.list({"lookup_keys": [lookup_key], "limit": 1}).data
    current = found[0].to_dict() if found else None
    if current and _price_matches(current, product_id=product_id, amount=amount, monthly=monthly):
        return current, False
    params = {
        "product": product_id,
        "unit_amount": amount,
        "currency": CURRENCY,
        "lookup_key": lookup_key,
        "transfer_lookup_key": True,
    }
    if monthly:
        params["recurring"] = {"interval": "month"}
    price = client.v1.prices.create(params).to_dict()
    if current:
        client.v1.prices.update(current["id"], {"active": False})
    return price, True


def _cents_decimal(cents: Decimal) -> str:
    """Cents as Stripe's `unit_amount_decimal` wants them: a plain decimal string."""
    return format(Decimal(cents).normalize(), "f")


def _overage_price_matches(price: dict, *, product_id: str, cents: Decimal, meter_id: str) -> bool:
    amount = price.get("unit_amount_decimal")
    return (
        price.get("product") == product_id
        and amount is not None
        and Decimal(str(amount)) == Decimal(cents)
        and price.get("currency") == CURRENCY
        and dig(price, "recurring", "interval") == "month"
        and dig(price, "recurring", "usage_type") == "metered"
        and dig(price, "recurring", "meter") == meter_id
    )


def _overage_price_ensure(
    client, *, product_id: str, lookup_key: str, cents: Decimal, meter_id: str
) -> tuple[dict, bool]:
    """The plan's monthly metered price on the meter, `cents` a video-second; replaced (and the
    old one archived) when the rate, product or meter changed."""
    found = client.v1.prices.list({"lookup_keys": [lookup_key], "limit": 1}).data
    current = found[0].to_dict() if found else None
    if current and _overage_price_matches(current, product_id=product_id, cents=cents, meter_id=meter_id):
        return current, False
    price = client.v1.prices.create(
        {
            "product": product_id,
            "unit_amount_decimal": _cents_decimal(cents),
            "currency": CURRENCY,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
            "nickname": "Overage per video-second",
            "lookup_key": lookup_key,
            "transfer_lookup_key": True,
        }
    ).to_dict()
    if current:
        client.v1.prices.update(current["id"], {"active": False})
    return price, True


def _price_archive(client, *, lookup_key: str) -> str | None:
    """Archive the active price holding `lookup_key`, if any; returns its id."""
    found = client.v1.prices.list({"lookup_keys": [lookup_key], "limit": 1}).data
    if found and found[0].get("active", True):
        client.v1.prices.update(found[0].id, {"active": False})
        return found[0].id
    return None


def _meter_ensure(client, *, event_name: str) -> tuple[dict, bool]:
    for meter in client.v1.billing.meters.list({"limit": 100}).auto_paging_iter():
        if dig(meter, "event_name") == event_name:
            return meter.to_dict(), False
    meter = client.v1.billing.meters.create(
        {
            "display_name": "Video seconds",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    return meter.to_dict(), True


class Command(BaseCommand):
    help = "Create or update the Stripe products, prices and billing meter for Framecast's plans and packs."

    def handle(self, *args, **options):
        try:
            client = stripe_client()
        except StripeNotConfigured as error:
            raise CommandError(f"{error} Set it to the account's secret key first.") from None
        try:
            self._sync(client)
        except stripe.StripeError as error:
            raise CommandError(f"Stripe refused a request: {error}") from None

    def _sync(self, client) -> None:
        # The meter first: the plans' overage prices are built on it.
        meter, created = _meter_ensure(client, event_name=settings.STRIPE_METER_EVENT_NAME)
        self.stdout.write(f"meter {settings.STRIPE_METER_EVENT_NAME}: {meter['id']} ({'created' if created else 'found'})")
        rows = [("plan", plan, True) for plan in Plan.objects.filter(is_active=True)]
        rows += [("pack", pack, False) for pack in CreditPack.objects.filter(is_active=True)]
        for kind, row, monthly in rows:
            if row.price_cents == 0:
                self.stdout.write(f"{kind} {row.slug}: free, nothing to sell in Stripe.")
                continue
            key = f"framecast-{kind}-{row.slug}"
            product, product_created = _product_ensure(client, key=key, name=row.name, stored_id=row.stripe_product_id)
            price, price_created = _price_ensure(
                client, product_id=product["id"], lookup_key=key, amount=row.price_cents, monthly=monthly
            )
            type(row).objects.filter(pk=row.pk).update(stripe_product_id=product["id"], stripe_price_id=price["id"])
            self.stdout.write(
                f"{kind} {row.slug}: product {product['id']} ({'created' if product_created else 'found'}), "
                f"price {price['id']} ({'created' if price_created else 'found'})"
            )
            if kind == "plan":
                self._overage_sync(client, row, product_id=product["id"], meter_id=meter["id"])
        self.stdout.write(self.style.SUCCESS("Stripe matches the plans and packs."))

    def _overage_sync(self, client, plan: Plan, *, product_id: str, meter_id: str) -> None:
        lookup_key = f"framecast-plan-{plan.slug}-overage"
        if not plan.metered_overage or plan.overage_cents_per_video_second <= 0:
            if plan.metered_overage:
                self.stderr.write(
                    f"plan {plan.slug}: metered overage without overage_cents_per_video_second, so its overage "
                    "cannot be billed and Checkout refuses the plan. Set it in billing/plans.toml and run "
                    "`manage.py sync_plans`, then this command again."
                )
            archived = _price_archive(client, lookup_key=lookup_key)
            Plan.objects.filter(pk=plan.pk).update(stripe_overage_price_id="")
            if archived:
                self.stdout.write(f"plan {plan.slug}: overage price {archived} archived (no metered overage)")
            return
        price, created = _overage_price_ensure(
            client, product_id=product_id, lookup_key=lookup_key, cents=plan.overage_cents_per_video_second, meter_id=meter_id
        )
        Plan.objects.filter(pk=plan.pk).update(stripe_overage_price_id=price["id"])
        self.stdout.write(
            f"plan {plan.slug}: overage price {price['id']} at {_cents_decimal(plan.overage_cents_per_video_second)} "
            f"cents a video-second ({'created' if created else 'found'})"
        )
