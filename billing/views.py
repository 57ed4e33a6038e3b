"""The Billing page (everyone in the team may look), the owner's buttons (Checkout, plan
changes, the Customer Portal) and Stripe's webhook."""

import logging
from datetime import UTC, datetime

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import Perm, has_perm, require
from accounts.selectors import request_membership
from core.cleaning import body_limit_refusal

from . import checkout, subscriptions, webhooks
from .checkout import BillingRefused, has_live_subscription
from .forms import PackChoiceForm, PlanChoiceForm
from .ledger import account_for_team
from .models import BillingAccount, CreditPack, Plan
from .stripe_client import stripe_configured, stripe_error_text
from .usage import period_start, usage_this_period

logger = logging.getLogger(__name__)

LEDGER_ROWS = 25


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _overage_rate(plan: Plan) -> str:
    """What a second of video beyond the balance costs, e.g. "$0.16"; "" without metered overage."""
    if not plan.metered_overage or plan.overage_cents_per_video_second <= 0:
        return ""
    dollars = plan.overage_cents_per_video_second / 100
    return f"${dollars:,.2f}" if dollars == round(dollars, 2) else f"${dollars.normalize():f}"


def _plan_action(plan: Plan, account: BillingAccount, *, can_pay: bool) -> str:
    """The label of the plan's button, or "" for none (current plan, or nothing to do)."""
    current = account.plan
    live = has_live_subscription(account)
    if plan.pk == current.pk:
        return "Keep this plan" if can_pay and live and account.cancel_at_period_end else ""
    if not can_pay or (plan.price_cents == 0 and not live) or (plan.price_cents and not plan.stripe_price_id):
        return ""
    return "Upgrade" if plan.price_cents > current.price_cents else "Downgrade"


def _invoices(account: BillingAccount, *, can_manage: bool) -> tuple[list[dict], str]:
    # Invoices carry the customer's billing details: owners only.
    if not can_manage:
        return [], ""
    try:
        rows = checkout.invoices_recent(account)
    except stripe.StripeError as error:
        return [], f"Invoices could not be loaded from Stripe: {stripe_error_text(error)}"
    for row in rows:
        row["created_at"] = datetime.fromtimestamp(row.get("created") or 0, tz=UTC)
        row["amount"] = _dollars(row.get("amount_paid") or row.get("amount_due") or 0)
    return rows, ""


@login_required
@require_GET
def overview(request):
    membership = request_membership(request)
    require(membership, Perm.VIEW)
    account = account_for_team(membership.team)
    configured = stripe_configured()
    can_manage = has_perm(membership, Perm.MANAGE_BILLING)
    can_pay = can_manage and configured
    since = period_start(account)
    by_member, by_key = usage_this_period(account, since=since)
    invoices, invoices_error = _invoices(account, can_manage=can_manage) if configured else ([], "")
    context = {
        "team": membership.team,
        "account": account,
        "stripe_configured": configured,
        "can_manage": can_manage,
        "can_pay": can_pay,
        "has_subscription": has_live_subscription(account),
        "plans": [
            {
                "plan": plan,
                "price": _dollars(plan.price_cents),
                "overage": _overage_rate(plan),
                "action": _plan_action(plan, account, can_pay=can_pay),
            }
            for plan in Plan.objects.filter(is_active=True)
        ],
        "packs": [
            {"pack": pack, "price": _dollars(pack.price_cents), "buyable": can_pay and bool(pack.stripe_price_id)}
            for pack in CreditPack.objects.filter(is_active=True)
        ],
        "entries": account.entries.all()[:LEDGER_ROWS],
        "period_start": since,
        "usage_by_member": by_member,
        "usage_by_key": by_key,
        "invoices": invoices,
        "invoices_error": invoices_error,
    }
    return render(request, "billing/overview.html", context)


def _return_urls(request) -> dict:
    page = request.build_absolute_uri(reverse("billing:overview"))
    return {"success_url": f"{page}?checkout=done", "cancel_url": f"{page}?checkout=cancelled"}


def _back(request, *, error: str = "", success: str = ""):
    if error:
        messages.error(request, error)
    elif success:
        messages.success(request, success)
    return redirect("billing:overview")


def _owner_action(request, action):
    """Run an owner's billing action: 403 for other roles, the refusal's message or Stripe's
    error on the Billing page, else where the action sends the owner."""
    membership = request_membership(request)
    require(membership, Perm.MANAGE_BILLING)
    try:
        url, message = action(membership)
    except BillingRefused as refusal:
        return _back(request, error=refusal.message)
    except stripe.StripeError as error:
        logger.warning("Stripe refused a billing action: %s", error)
        return _back(request, error=f"Stripe did not accept the request: {stripe_error_text(error)} Nothing was charged.")
    return redirect(url) if url else _back(request, success=message)


@login_required
@require_POST
def plan_choose(request):
    form = PlanChoiceForm(request.POST)

    def action(membership):
        if not form.is_valid():
            raise BillingRefused(" ".join(form.errors["plan"]))
        return subscriptions.plan_choose(membership=membership, plan=form.cleaned_data["plan"], **_return_urls(request))

    return _owner_action(request, action)


@login_required
@require_POST
def pack_buy(request):
    form = PackChoiceForm(request.POST)

    def action(membership):
        if not form.is_valid():
            raise BillingRefused(" ".join(form.errors["pack"]))
        return checkout.checkout_pack(membership=membership, pack=form.cleaned_data["pack"], **_return_urls(request)), ""

    return _owner_action(request, action)


@login_required
@require_POST
def portal(request):
    return_url = request.build_absolute_uri(reverse("billing:overview"))
    return _owner_action(request, lambda membership: (checkout.portal_session(membership=membership, return_url=return_url), ""))


@csrf_exempt  # Stripe cannot send a CSRF token; the signature authenticates the request.
@require_POST
def stripe_webhook(request):
    try:
        payload = request.body
    except RequestDataTooBig as error:  # no Stripe event is that large
        return JsonResponse({"error": body_limit_refusal(error).message}, status=413)
    try:
        event = webhooks.event_verify(payload=payload, signature=request.headers.get("Stripe-Signature", ""))
    except webhooks.WebhookRejected as error:
        return JsonResponse({"error": str(error)}, status=400)
    try:
        record, handled = webhooks.event_process(event)
    except Exception:  # recorded as failed by event_process; a 500 makes Stripe retry
        return JsonResponse({"error": "The event could not be handled; it is recorded and Stripe will retry."}, status=500)
    return JsonResponse({"event": record.event_id, "status": record.status, "duplicate": not handled})
