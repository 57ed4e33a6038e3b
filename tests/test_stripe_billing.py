"""Stripe billing end to end: Checkout, signed webhooks, renewals, failures, cancellation,
credit packs, usage metering and the catalogue sync. The real `stripe` SDK talks to the fake
Stripe of tests/fake_stripe.py over HTTP; webhooks are signed with Stripe's real scheme."""

import io
import json
from decimal import Decimal
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from billing import ledger
from billing.models import BillingAccount, CreditEntry, CreditPack, JobCharge, Plan, StripeEvent, UsageReport
from billing.usage import usage_reports_send
from generation import services
from generation.models import Job
from generation.services import JobParams, job_submit

from .conftest import SMALL_REQUEST, at_once, client_for, page_text
from .fake_stripe import MONTH, deliver, fake_stripe  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_catalog(fake_stripe):
    """Fake Stripe with Framecast's products, prices and meter (as `sync_stripe` makes them)."""
    call_command("sync_stripe", stdout=io.StringIO())
    return fake_stripe


@pytest.fixture
def owner(alice):
    """Alice, with her email verified (paying needs it)."""
    User.objects.filter(pk=alice.pk).update(email_verified_at=timezone.now())
    alice.refresh_from_db()
    return alice


def account_of(team) -> BillingAccount:
    return BillingAccount.objects.select_related("plan").get(team=team)


def checkout(client, fake, *, plan: str | None = None, pack: str | None = None) -> dict[str, dict]:
    """Press a Buy/Upgrade button, then pay at (fake) Checkout; returns Stripe's events."""
    response = client.post("/billing/plan/", {"plan": plan}) if plan else client.post("/billing/credits/", {"pack": pack})
    assert response.status_code == 302 and response["Location"].startswith(f"{fake.url}/checkout/"), response
    return fake.checkout_complete(response["Location"].rsplit("/", 1)[1])


def deliver_all(fake, events) -> None:
    for event in events:
        response = deliver(fake, event)
        assert response.status_code == 200, response.content


def subscribed(owner, fake, team=None, plan: str = "creator") -> tuple[Client, dict]:
    team = team or owner.personal_team
    client = client_for(owner, team)
    events = checkout(client, fake, plan=plan)
    deliver_all(fake, events.values())
    return client, events


def test_checkout_and_its_webhooks_put_the_team_on_the_plan_with_its_credits(owner, stripe_catalog):
    team = owner.personal_team
    client = client_for(owner, team)
    events = checkout(client, stripe_catalog, plan="creator")

    session = stripe_catalog.objects["checkout.session"][events["checkout.session.completed"]["data"]["object"]["id"]]
    assert session["mode"] == "subscription" and session["client_reference_id"] == str(team.pk)
    assert account_of(team).plan.slug == "free", "nothing changes before Stripe says it is paid"

    deliver_all(stripe_catalog, events.values())
    account = account_of(team)
    subscription = stripe_catalog.objects["subscription"][account.stripe_subscription_id]
    assert (account.plan.slug, account.status) == ("creator", "active")
    assert account.stripe_customer_id == session["customer"] == subscription["customer"]
    assert account.subscription_credits == 1500
    assert account.current_period_end.timestamp() == subscription["items"]["data"][0]["current_period_end"]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert "Creator" in page_text(client.get("/billing/"))


def test_renewal_resets_plan_credits_and_keeps_purchased_ones(owner, stripe_catalog):
    team = owner.personal_team
    client, _ = subscribed(owner, stripe_catalog)
    deliver_all(stripe_catalog, checkout(client, stripe_catalog, pack="pack-500").values())
    ledger.credits_adjust(team, amount=-1000, actor="test", note="spent on videos")
    before = account_of(team)
    assert (before.subscription_credits, before.purchased_credits) == (500, 500)

    deliver_all(stripe_catalog, stripe_catalog.subscription_renew(before.stripe_subscription_id).values())

    after = account_of(team)
    assert (after.subscription_credits, after.purchased_credits) == (1500, 500)
    assert after.current_period_end - before.current_period_end == timedelta(seconds=MONTH)
    assert after.entries.filter(kind=CreditEntry.Kind.EXPIRY, amount=-500).count() == 1


def test_a_failed_payment_makes_the_team_past_due_refusing_jobs_with_402_but_not_the_gallery(owner, stripe_catalog):
    team = owner.personal_team
    client, _ = subscribed(owner, stripe_catalog)
    events = stripe_catalog.subscription_renew(account_of(team).stripe_subscription_id, paid=False)
    deliver(stripe_catalog, events["invoice.payment_failed"])  # alone: the subscription is read back

    assert account_of(team).status == "past_due"
    refused = client.post("/", SMALL_REQUEST)
    assert refused.status_code == 402 and "Your last payment failed" in page_text(refused)
    assert not Job.objects.exists()
    assert client.get("/").status_code == 200

    deliver(stripe_catalog, events["customer.subscription.updated"])  # the same state again
    paid = stripe_catalog.subscription_renew(account_of(team).stripe_subscription_id)
    deliver_all(stripe_catalog, paid.values())
    assert account_of(team).status == "active"


def test_cancelling_ends_the_subscription_with_its_period_then_the_team_is_on_free(owner, stripe_catalog):
    team = owner.personal_team
    client, _ = subscribed(owner, stripe_catalog)
    ledger.credits_purchase(team, credits=42, reference="earlier-pack")

    response = client.post("/billing/plan/", {"plan": "free"}, follow=True)
    assert "subscription ends on" in page_text(response)
    account = account_of(team)
    assert account.plan.slug == "creator" and account.cancel_at_period_end

    deliver_all(stripe_catalog, stripe_catalog.subscription_end(account.stripe_subscription_id).values())
    account = account_of(team)
    assert (account.plan.slug, account.status, account.stripe_subscription_id) == ("free", "canceled", "")
    assert (account.subscription_credits, account.purchased_credits) == (100, 42)
    assert client.post("/", SMALL_REQUEST).status_code == 302, "Free jobs still run"


def test_a_credit_pack_is_added_once_even_if_its_event_arrives_twice(owner, stripe_catalog):
    team = owner.personal_team
    event = checkout(client_for(owner, team), stripe_catalog, pack="pack-500")["checkout.session.completed"]

    first, again = deliver(stripe_catalog, event), deliver(stripe_catalog, event)
    resent = deliver(stripe_catalog, {**event, "id": "evt_resent"})  # a new event, same payment

    assert (first.json()["duplicate"], again.json()["duplicate"], resent.json()["duplicate"]) == (False, True, False)
    assert account_of(team).purchased_credits == 500
    assert account_of(team).entries.filter(kind=CreditEntry.Kind.PURCHASE).count() == 1


def test_a_bad_signature_is_refused_with_400_and_changes_nothing(owner, stripe_catalog):
    team = owner.personal_team
    events = checkout(client_for(owner, team), stripe_catalog, pack="pack-500")
    body = json.dumps(events["checkout.session.completed"]).encode()
    url = "/billing/stripe/webhook/"
    client = Client()

    def post(payload, **headers):
        return client.post(url, payload, content_type="application/json", **headers)

    attempts = {
        "wrong secret": post(body, HTTP_STRIPE_SIGNATURE=stripe_catalog.sign(body, secret="whsec_other")),
        "tampered body": post(body.replace(b"500", b"900"), HTTP_STRIPE_SIGNATURE=stripe_catalog.sign(body)),
        "no header": post(body),
        "too old": deliver(stripe_catalog, events["checkout.session.completed"], timestamp=int(timezone.now().timestamp()) - 3600),
    }
    assert {name: response.status_code for name, response in attempts.items()} == dict.fromkeys(attempts, 400)
    assert "Stripe-Signature" in attempts["wrong secret"].json()["error"]
    assert not StripeEvent.objects.exists()
    assert account_of(team).purchased_credits == 0
    assert client.get(url).status_code == 405


def test_the_same_event_twice_is_handled_once(owner, stripe_catalog):
    team = owner.personal_team
    _, events = subscribed(owner, stripe_catalog)
    requests_before = len(stripe_catalog.requests)

    replay = deliver(stripe_catalog, events["invoice.paid"])

    assert replay.status_code == 200 and replay.json() == {
        "event": events["invoice.paid"]["id"], "status": "processed", "duplicate": True
    }
    assert len(stripe_catalog.requests) == requests_before, "a replay is not handled again"
    assert StripeEvent.objects.filter(event_id=events["invoice.paid"]["id"]).count() == 1
    assert account_of(team).entries.filter(kind=CreditEntry.Kind.GRANT, reference=events["invoice.paid"]["data"]["object"]["id"]).count() == 1


def test_subscription_updated_before_checkout_completed_ends_in_the_same_state(owner, acme, stripe_catalog):
    def state(team):
        account = account_of(team)
        period_end_known = account.current_period_end is not None
        return (account.plan.slug, account.status, account.subscription_credits, account.cancel_at_period_end, period_end_known)

    subscribed(owner, stripe_catalog, team=owner.personal_team)  # in Stripe's usual order

    events = checkout(client_for(owner, acme), stripe_catalog, plan="creator")
    subscription = stripe_catalog.objects["subscription"][events["customer.subscription.created"]["data"]["object"]["id"]]
    # Snapshots that no longer hold (Stripe's subscription is active): they must not win, even last.
    stale = [
        stripe_catalog.event("customer.subscription.updated", {**subscription, "status": status})
        for status in ("incomplete", "past_due")
    ]
    order = ["checkout.session.completed", "invoice.paid", "customer.subscription.created"]
    deliver_all(stripe_catalog, [stale[0], *(events[name] for name in order), stale[1]])

    assert state(acme) == state(owner.personal_team) == ("creator", "active", 1500, False, True)


def test_a_failed_event_is_recorded_and_handled_again_when_stripe_retries(owner, stripe_catalog):
    team = owner.personal_team
    events = checkout(client_for(owner, team), stripe_catalog, plan="creator")
    price = Plan.objects.get(slug="creator").stripe_price_id
    Plan.objects.filter(slug="creator").update(stripe_price_id="")  # plans out of sync with Stripe

    failed = deliver(stripe_catalog, events["customer.subscription.created"])
    record = StripeEvent.objects.get(event_id=events["customer.subscription.created"]["id"])
    assert failed.status_code == 500
    assert record.status == "failed" and "Run `manage.py sync_stripe`" in record.error
    assert account_of(team).plan.slug == "free"

    Plan.objects.filter(slug="creator").update(stripe_price_id=price)
    assert deliver(stripe_catalog, events["customer.subscription.created"]).json()["status"] == "processed"
    assert account_of(team).plan.slug == "creator"


def test_unknown_event_types_are_recorded_as_ignored(stripe_catalog):
    event = stripe_catalog.event("customer.created", {"id": "cus_x", "object": "customer"})
    assert deliver(stripe_catalog, event).json()["status"] == "ignored"
    assert StripeEvent.objects.get(event_id=event["id"]).error == "not an event Framecast handles"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_are_handled_once(owner, stripe_catalog):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them anyway)")
    team = owner.personal_team
    event = checkout(client_for(owner, team), stripe_catalog, pack="pack-500")["checkout.session.completed"]
    results = [response.json() for response in at_once(lambda: deliver(stripe_catalog, event), 4, timeout=10)]
    assert sorted(result["duplicate"] for result in results) == [False, True, True, True]
    assert account_of(team).purchased_credits == 500


# --- Usage metering -------------------------------------------------------------------------


def usage_report(account, identifier: str, value: float) -> UsageReport:
    return UsageReport.objects.create(identifier=identifier, account=account, event_name="framecast_video_seconds", value=value)


def test_usage_reports_become_one_meter_event_each_with_their_identifier(owner, stripe_catalog):
    subscribed(owner, stripe_catalog, plan="pro")
    account = account_of(owner.personal_team)
    usage_report(account, "job-1", 2.5)
    usage_report(account, "job-2", 1.125)

    assert usage_reports_send().sent == 2
    assert usage_reports_send().sent == 0, "sent rows are not sent again"
    assert [(e["identifier"], e["payload"]) for e in stripe_catalog.meter_events] == [
        ("job-1", {"stripe_customer_id": account.stripe_customer_id, "value": "2.5"}),
        ("job-2", {"stripe_customer_id": account.stripe_customer_id, "value": "1.125"}),
    ]
    assert not UsageReport.objects.filter(sent_at=None).exists()


@pytest.mark.parametrize("after_effect", [False, True], ids=["request lost", "answer lost"])
def test_a_failed_usage_report_is_retried_without_loss_or_double_count(owner, stripe_catalog, after_effect):
    subscribed(owner, stripe_catalog, plan="pro")
    report = usage_report(account_of(owner.personal_team), "job-1", 4.0)
    stripe_catalog.fail_next("POST", "/v1/billing/meter_events", after_effect=after_effect)

    assert usage_reports_send().failed == 1
    report.refresh_from_db()
    assert report.sent_at is None and report.attempts == 1 and "Simulated failure" in report.last_error
    assert len(stripe_catalog.meter_events) == (1 if after_effect else 0)

    assert usage_reports_send().sent == 1
    report.refresh_from_db()
    assert report.sent_at is not None and report.attempts == 2 and report.last_error == ""
    assert [e["identifier"] for e in stripe_catalog.meter_events] == ["job-1"]


def test_usage_of_a_team_without_a_stripe_customer_waits_with_the_reason(alice, stripe_catalog):
    report = usage_report(ledger.account_for_team(alice.personal_team), "job-1", 1.0)
    assert usage_reports_send().failed == 1
    report.refresh_from_db()
    assert report.sent_at is None and "no Stripe customer" in report.last_error


def test_the_report_usage_task_is_on_the_beat_schedule(owner, stripe_catalog):
    from billing.tasks import report_usage
    from config.celery_app import app

    subscribed(owner, stripe_catalog, plan="pro")
    usage_report(account_of(owner.personal_team), "job-1", 1.0)
    assert report_usage.apply().get() == 1
    assert app.conf.beat_schedule["billing.report_usage"]["task"] == "billing.report_usage"


# --- Catalogue -------------------------------------------------------------------------------


def stripe_ids() -> dict:
    return {row.slug: (row.stripe_product_id, row.stripe_price_id) for row in [*Plan.objects.all(), *CreditPack.objects.all()]}


def test_sync_stripe_twice_creates_each_product_and_price_once(fake_stripe):
    call_command("sync_stripe", stdout=io.StringIO())
    ids = stripe_ids()
    counts = {kind: len(fake_stripe.objects[kind]) for kind in ("product", "price", "billing.meter")}
    # 3 paid plans, 2 packs, and the overage of the 2 metered plans; Free sells nothing
    assert counts == {"product": 5, "price": 7, "billing.meter": 1}

    out = io.StringIO()
    call_command("sync_stripe", stdout=out)
    assert {kind: len(fake_stripe.objects[kind]) for kind in counts} == counts
    assert "created" not in out.getvalue()
    assert stripe_ids() == ids and all(ids[slug] == ("", "") for slug in ["free"])
    creator = fake_stripe.objects["price"][Plan.objects.get(slug="creator").stripe_price_id]
    assert (creator["unit_amount"], creator["recurring"]["interval"], creator["lookup_key"]) == (1500, "month", "framecast-plan-creator")


def test_sync_stripe_replaces_a_changed_price_and_archives_the_old_one(fake_stripe):
    call_command("sync_stripe", stdout=io.StringIO())
    old = Plan.objects.get(slug="creator").stripe_price_id
    Plan.objects.filter(slug="creator").update(price_cents=1900, stripe_product_id="")  # and the stored id lost

    call_command("sync_stripe", stdout=io.StringIO())
    plan = Plan.objects.get(slug="creator")
    assert plan.stripe_price_id != old and len(fake_stripe.objects["product"]) == 5
    assert fake_stripe.objects["price"][old]["active"] is False
    assert fake_stripe.objects["price"][plan.stripe_price_id]["unit_amount"] == 1900


def test_sync_plans_makes_the_database_match_the_file(db):
    Plan.objects.filter(slug="creator").update(monthly_credits=1)
    call_command("sync_plans", stdout=io.StringIO())
    assert Plan.objects.get(slug="creator").monthly_credits == 1500


# --- Plan changes of a subscribed team ---------------------------------------------------------


def test_an_upgrade_restarts_the_period_with_the_new_plans_credits(owner, stripe_catalog):
    team = owner.personal_team
    client, _ = subscribed(owner, stripe_catalog)
    ledger.credits_adjust(team, amount=-1400, actor="test", note="spent on videos")

    response = client.post("/billing/plan/", {"plan": "pro"}, follow=True)
    assert "The team is now on the Pro plan." in page_text(response)
    assert account_of(team).plan.slug == "pro", "limits change at once"

    deliver_all(stripe_catalog, stripe_catalog.take_events())  # the upgrade's invoice, paid in full
    account = account_of(team)
    assert (account.plan.slug, account.subscription_credits) == ("pro", 6000)


def test_a_downgrade_keeps_this_periods_credits_until_renewal(owner, stripe_catalog):
    team = owner.personal_team
    client, _ = subscribed(owner, stripe_catalog, plan="pro")
    client.post("/billing/plan/", {"plan": "creator"})
    events = stripe_catalog.take_events()
    assert [event["type"] for event in events] == ["customer.subscription.updated"], "nothing invoiced now"
    deliver_all(stripe_catalog, events)
    assert (account_of(team).plan.slug, account_of(team).subscription_credits) == ("creator", 6000)

    deliver_all(stripe_catalog, stripe_catalog.subscription_renew(account_of(team).stripe_subscription_id).values())
    assert account_of(team).subscription_credits == 1500


def test_a_proration_only_invoice_grants_no_credits(owner, stripe_catalog):
    team = owner.personal_team
    subscribed(owner, stripe_catalog)
    ledger.credits_adjust(team, amount=-1000, actor="test", note="spent on videos")
    event = stripe_catalog.proration_invoice_paid(account_of(team).stripe_subscription_id)
    assert deliver(stripe_catalog, event).json()["status"] == "ignored"
    assert account_of(team).subscription_credits == 500


# --- Metered overage: a price on the meter, on the subscription of a metered plan ---------------


def prices_of(fake, subscription_id: str) -> dict[str, dict]:
    """The subscription's items by price id."""
    return {item["price"]["id"]: item for item in fake.objects["subscription"][subscription_id]["items"]["data"]}


def test_sync_stripe_gives_each_metered_plan_a_metered_overage_price_on_the_meter(fake_stripe):
    call_command("sync_stripe", stdout=io.StringIO())
    (meter,) = fake_stripe.objects["billing.meter"].values()
    metered = {p["id"]: p for p in fake_stripe.objects["price"].values() if p["recurring"] and p["recurring"]["usage_type"] == "metered"}
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    assert set(metered) == {plans["pro"].stripe_overage_price_id, plans["business"].stripe_overage_price_id}
    for slug in ("pro", "business"):
        plan, price = plans[slug], metered[plans[slug].stripe_overage_price_id]
        assert plan.metered_overage and plan.overage_cents_per_video_second > 0, "the rate comes from plans.toml"
        assert price["recurring"] == {"interval": "month", "interval_count": 1, "usage_type": "metered", "meter": meter["id"]}
        assert Decimal(price["unit_amount_decimal"]) == plan.overage_cents_per_video_second
        assert (price["product"], price["currency"], price["lookup_key"]) == (plan.stripe_product_id, "usd", f"framecast-plan-{slug}-overage")
    assert plans["creator"].stripe_overage_price_id == plans["free"].stripe_overage_price_id == ""

    out = io.StringIO()
    call_command("sync_stripe", stdout=out)
    assert "created" not in out.getvalue()
    assert len(fake_stripe.objects["price"]) == 7 and len(fake_stripe.objects["billing.meter"]) == 1
    assert {p.slug: p.stripe_overage_price_id for p in Plan.objects.all()} == {s: p.stripe_overage_price_id for s, p in plans.items()}


def test_sync_stripe_replaces_a_changed_overage_rate_and_archives_the_old_price(fake_stripe):
    call_command("sync_stripe", stdout=io.StringIO())
    old = Plan.objects.get(slug="pro").stripe_overage_price_id
    Plan.objects.filter(slug="pro").update(overage_cents_per_video_second=Decimal("5.25"))

    call_command("sync_stripe", stdout=io.StringIO())
    new = fake_stripe.objects["price"][Plan.objects.get(slug="pro").stripe_overage_price_id]
    assert new["id"] != old and fake_stripe.objects["price"][old]["active"] is False
    assert (new["unit_amount_decimal"], new["unit_amount"], new["lookup_key"]) == ("5.25", None, "framecast-plan-pro-overage")
    assert fake_stripe.objects["price"][old]["lookup_key"] is None
    assert len(fake_stripe.objects["price"]) == 8


def test_checkout_for_a_metered_plan_subscribes_to_its_flat_and_overage_prices(owner, stripe_catalog):
    team = owner.personal_team
    pro = Plan.objects.get(slug="pro")
    events = checkout(client_for(owner, team), stripe_catalog, plan="pro")
    session = stripe_catalog.objects["checkout.session"][events["checkout.session.completed"]["data"]["object"]["id"]]
    assert session["_line_items"] == [{"price": pro.stripe_price_id, "quantity": "1"}, {"price": pro.stripe_overage_price_id}]

    deliver_all(stripe_catalog, events.values())
    account = account_of(team)
    assert (account.plan.slug, account.status, account.subscription_credits) == ("pro", "active", 6000)
    items = prices_of(stripe_catalog, account.stripe_subscription_id)
    assert set(items) == {pro.stripe_price_id, pro.stripe_overage_price_id}
    assert items[pro.stripe_overage_price_id]["quantity"] is None
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    rate = f"${pro.overage_cents_per_video_second / 100:.2f} a video-second"
    assert rate in page_text(client_for(owner, team).get("/billing/")), "the plans table shows the overage rate"


def test_checkout_for_a_creator_plan_has_no_overage_item(owner, stripe_catalog):
    subscribed(owner, stripe_catalog, plan="creator")
    account = account_of(owner.personal_team)
    assert list(prices_of(stripe_catalog, account.stripe_subscription_id)) == [account.plan.stripe_price_id]


def test_a_metered_plan_without_an_overage_price_is_not_sold(owner, stripe_catalog):
    Plan.objects.filter(slug="pro").update(stripe_overage_price_id="")
    response = client_for(owner, owner.personal_team).post("/billing/plan/", {"plan": "pro"}, follow=True)
    assert "its overage has no Stripe price" in page_text(response)
    assert not stripe_catalog.objects["checkout.session"]


def test_plan_changes_add_and_remove_the_overage_item(owner, stripe_catalog):
    team = owner.personal_team
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    client, _ = subscribed(owner, stripe_catalog, plan="creator")
    subscription_id = account_of(team).stripe_subscription_id

    client.post("/billing/plan/", {"plan": "pro"})  # upgrade: the overage item is added
    deliver_all(stripe_catalog, stripe_catalog.take_events())
    assert set(prices_of(stripe_catalog, subscription_id)) == {plans["pro"].stripe_price_id, plans["pro"].stripe_overage_price_id}
    assert (account_of(team).plan.slug, account_of(team).subscription_credits) == ("pro", 6000)

    client.post("/billing/plan/", {"plan": "business"})  # metered to metered: the item moves to the new rate
    deliver_all(stripe_catalog, stripe_catalog.take_events())
    items = prices_of(stripe_catalog, subscription_id)
    assert set(items) == {plans["business"].stripe_price_id, plans["business"].stripe_overage_price_id}
    assert account_of(team).plan.slug == "business"

    client.post("/billing/plan/", {"plan": "creator"})  # downgrade: the overage item is removed
    events = stripe_catalog.take_events()
    assert [event["type"] for event in events] == ["customer.subscription.updated"]
    deliver_all(stripe_catalog, events)
    assert list(prices_of(stripe_catalog, subscription_id)) == [plans["creator"].stripe_price_id]
    assert account_of(team).plan.slug == "creator"


def test_an_invoice_of_metered_usage_alone_grants_no_plan_credits(owner, stripe_catalog):
    team = owner.personal_team
    subscribed(owner, stripe_catalog, plan="pro")
    account = account_of(team)
    ledger.credits_adjust(team, amount=-1000, actor="test", note="spent on videos")
    invoice = stripe_catalog.objects["invoice"][stripe_catalog.objects["subscription"][account.stripe_subscription_id]["latest_invoice"]]
    overage = account.plan.stripe_overage_price_id
    usage_only = {
        **invoice, "id": "in_usage_only", "billing_reason": "subscription_update",
        "lines": {**invoice["lines"], "data": [
            {**line, "pricing": {"type": "price_details", "price_details": {"price": overage, "product": account.plan.stripe_product_id}}}
            for line in invoice["lines"]["data"][:1]
        ]},
    }
    assert deliver(stripe_catalog, stripe_catalog.event("invoice.paid", usage_only)).json()["status"] == "ignored"
    assert account_of(team).subscription_credits == 5000


def test_overage_of_a_job_is_metered_for_the_customer_and_billed_on_the_next_invoice(owner, stripe_catalog):
    team = owner.personal_team
    subscribed(owner, stripe_catalog, plan="pro")
    account = account_of(team)
    pro = account.plan
    ledger.credits_adjust(team, amount=-(account.available - 25), actor="test", note="leave 25")
    job = job_submit(team=team, user=owner, params=JobParams(
        model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, fps=16, guidance=5.0,
        width=832, height=480, num_frames=81, steps=50,
    ))  # costs 100 credits: 25 from the balance, 75 as overage
    assert JobCharge.objects.get(job_id=job.id).overage_credits == 75
    job = services.job_start(job.id, worker="w")
    job = services.job_start_encoding(job, inference_seconds=1)
    services.job_succeed(job, video=b"v", poster=b"p", encode_seconds=0.1)
    report = UsageReport.objects.get(identifier=f"job-{job.id}")

    assert usage_reports_send().sent == 1
    (event,) = stripe_catalog.meter_events
    assert (event["identifier"], event["payload"]["stripe_customer_id"]) == (f"job-{job.id}", account.stripe_customer_id)
    # Billable: the event's meter is the one the subscription's overage price bills.
    (meter,) = [m for m in stripe_catalog.objects["billing.meter"].values() if m["event_name"] == event["event_name"]]
    overage_item = prices_of(stripe_catalog, account.stripe_subscription_id)[pro.stripe_overage_price_id]
    assert overage_item["price"]["recurring"]["meter"] == meter["id"]

    # At the renewal Stripe bills the period's usage at the plan's rate beside the next month.
    renewal = stripe_catalog.subscription_renew(account.stripe_subscription_id)
    lines = {line["pricing"]["price_details"]["price"]: line for line in renewal["invoice.paid"]["data"]["object"]["lines"]["data"]}
    expected = round(Decimal(str(report.value)) * pro.overage_cents_per_video_second)
    assert Decimal(lines[pro.stripe_overage_price_id]["quantity"]) == Decimal(str(report.value))
    assert (lines[pro.stripe_price_id]["amount"], lines[pro.stripe_overage_price_id]["amount"]) == (pro.price_cents, expected)
    assert expected > 0
    deliver_all(stripe_catalog, renewal.values())
    assert account_of(team).subscription_credits == 6000, "the renewal still grants the plan's credits"


def test_a_signature_dated_outside_the_tolerance_either_way_is_refused(owner, stripe_catalog):
    """Issue #21: the SDK checks only the past side of its 300 s tolerance; a signature dated
    ahead (even ten years) must not be accepted, or it stays replayable until then."""
    team = owner.personal_team
    event = checkout(client_for(owner, team), stripe_catalog, pack="pack-500")["checkout.session.completed"]
    now = int(timezone.now().timestamp())
    attempts = {
        "301 s ahead": deliver(stripe_catalog, event, timestamp=now + 301),
        "ten years ahead": deliver(stripe_catalog, event, timestamp=now + 10 * 365 * 86400),
        "301 s old": deliver(stripe_catalog, event, timestamp=now - 301),
    }
    assert {name: response.status_code for name, response in attempts.items()} == dict.fromkeys(attempts, 400)
    assert "in the future, more than the 300 s tolerance" in attempts["301 s ahead"].json()["error"]
    assert "tolerance" in attempts["301 s old"].json()["error"]
    assert not StripeEvent.objects.exists() and account_of(team).purchased_credits == 0

    # Within the tolerance (a clock a little ahead or behind), the event is handled.
    assert deliver(stripe_catalog, event, timestamp=now + 200).json()["status"] == "processed"
    assert deliver(stripe_catalog, {**event, "id": "evt_late"}, timestamp=now - 200).json()["duplicate"] is False
    assert account_of(team).purchased_credits == 500
