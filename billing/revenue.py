"""What Stripe was paid, recorded from the webhooks (billing.webhooks) as Payment rows: the
revenue side of the operator dashboard. Idempotent per Stripe object and kind, so an event
delivered twice or handled again after a failure records nothing new."""

from django.utils import timezone

from .models import BillingAccount, CreditPack, Payment, Plan
from .subscriptions import as_datetime, dig


def _account_for_customer(customer) -> BillingAccount | None:
    customer = customer.get("id") if isinstance(customer, dict) else customer
    return BillingAccount.objects.filter(stripe_customer_id=customer).first() if customer else None


def _record(*, stripe_id: str, kind: str, amount_cents: int, currency: str, account, paid_at) -> None:
    if amount_cents <= 0:
        return
    Payment.objects.get_or_create(
        stripe_id=stripe_id,
        kind=kind,
        defaults={"account": account, "amount_cents": amount_cents, "currency": (currency or "usd").lower(),
                  "paid_at": paid_at or timezone.now()},
    )


def _line_price(line: dict) -> str | None:
    price = dig(line, "pricing", "price_details", "price") or dig(line, "price")
    return price.get("id") if isinstance(price, dict) else price


def payment_record_invoice(invoice: dict, account: BillingAccount | None = None) -> None:
    """A paid invoice: its metered-price lines are usage revenue, the rest subscription."""
    paid = int(invoice.get("amount_paid") or 0)
    if not invoice.get("id") or paid <= 0:
        return
    account = account or _account_for_customer(invoice.get("customer"))
    metered = set(Plan.objects.exclude(stripe_overage_price_id="").values_list("stripe_overage_price_id", flat=True))
    lines = dig(invoice, "lines", "data", default=[]) or []
    usage = min(paid, sum(int(line.get("amount") or 0) for line in lines if _line_price(line) in metered))
    paid_at = as_datetime(dig(invoice, "status_transitions", "paid_at"))
    common = {"stripe_id": invoice["id"], "currency": invoice.get("currency"), "account": account, "paid_at": paid_at}
    _record(kind=Payment.Kind.USAGE, amount_cents=usage, **common)
    _record(kind=Payment.Kind.SUBSCRIPTION, amount_cents=paid - usage, **common)


def payment_record_pack(session: dict, account: BillingAccount | None) -> None:
    """A paid one-time checkout (a credit pack). Stripe sends `amount_total`; without it,
    the pack's list price named in the session's metadata."""
    amount = session.get("amount_total")
    if amount is None:
        pack = CreditPack.objects.filter(slug=dig(session, "metadata", "pack") or "").first()
        amount = pack.price_cents if pack else 0
    _record(stripe_id=session["id"], kind=Payment.Kind.PACK, amount_cents=int(amount), currency=session.get("currency"),
            account=account, paid_at=None)
