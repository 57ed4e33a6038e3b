"""The Billing page: everyone in the team sees plan, balance, history and usage; only owners
get the buttons, and the POST endpoints refuse everyone else with 403."""

import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.api_keys import apikey_create
from accounts.models import Membership, User
from billing import ledger
from billing.models import BillingAccount, JobCharge
from generation.models import Job

from .conftest import SMALL_REQUEST, client_for, page_text
from .fake_stripe import fake_stripe  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

POST_ENDPOINTS = [("/billing/plan/", {"plan": "creator"}), ("/billing/credits/", {"pack": "pack-500"}), ("/billing/portal/", {})]


@pytest.fixture
def stripe_catalog(fake_stripe):
    call_command("sync_stripe", stdout=io.StringIO())
    return fake_stripe


def visible_text(response) -> str:
    """The page's words without tags, whitespace collapsed: "Plan credits 100"."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())


def verify(user):
    User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
    user.refresh_from_db()
    return user


def test_the_page_shows_plan_balance_and_credit_history(alice, acme, bob):
    ledger.credits_purchase(acme, credits=500, reference="pack-test")
    response = client_for(bob, acme).get("/billing/")
    text = visible_text(response)
    assert "Billing for Acme" in text and "Plan: Free Active" in text
    assert "Plan credits 100" in text and "Purchased credits 500" in text and "Available 600" in text
    assert "Credits purchased +500 600" in text and "Plan credits granted +100 100 Free plan" in text  # the ledger
    assert re.search(r'<a href="/billing/"[^>]*>Billing</a>', page_text(response)), "the link in the top bar"


def test_members_see_billing_but_cannot_change_it(alice, acme, bob, stripe_catalog):
    bob_client = client_for(verify(bob), acme)
    text = page_text(bob_client.get("/billing/"))
    assert "Only team owners can change the plan or buy credits." in text
    assert "<button" not in text.split("Billing for Acme")[1].replace('<button class="link">Log out</button>', "")
    for url, data in POST_ENDPOINTS:
        response = bob_client.post(url, data)
        assert response.status_code == 403, url
        assert "may not manage billing" in page_text(response)
    assert not stripe_catalog.objects["checkout.session"] and not stripe_catalog.objects["customer"]


def test_without_stripe_the_page_says_so_and_offers_no_buttons(alice, alice_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    verify(alice)
    text = page_text(alice_client.get("/billing/"))
    assert "Online payments are not set up on this server." in text
    for label in ("Upgrade", "Downgrade", "Buy", "Manage payment"):
        assert f">{label}<" not in text
    refused = alice_client.post("/billing/plan/", {"plan": "creator"}, follow=True)
    assert "Online payments are not set up on this server, so plans and credits cannot be bought here." in page_text(refused)
    assert alice_client.post("/", SMALL_REQUEST).status_code == 302, "the Free plan still works"


def test_the_owners_upgrade_button_goes_to_stripe_checkout(alice, stripe_catalog):
    client = client_for(verify(alice))
    text = page_text(client.get("/billing/"))
    assert ">Upgrade<" in text and ">Buy<" in text and "Manage payment" not in text

    response = client.post("/billing/plan/", {"plan": "pro"})
    assert response.status_code == 302
    session_id = response["Location"].rsplit("/", 1)[1]
    assert response["Location"] == f"{stripe_catalog.url}/checkout/{session_id}"
    session = stripe_catalog.objects["checkout.session"][session_id]
    assert session["success_url"].startswith("http://testserver/billing/?checkout=done")
    assert BillingAccount.objects.get(team=alice.personal_team).stripe_customer_id == session["customer"]

    # The customer is made once per team.
    client.post("/billing/credits/", {"pack": "pack-500"})
    assert len(stripe_catalog.objects["customer"]) == 1


def test_an_unverified_email_cannot_pay_and_is_told_why(alice, alice_client, stripe_catalog):
    response = alice_client.post("/billing/plan/", {"plan": "creator"}, follow=True)
    assert response.status_code == 200
    assert "Verify your email address first: we mailed you a link, and you can ask for a new one." in page_text(response)
    assert not stripe_catalog.objects["checkout.session"]


def test_an_unknown_plan_is_refused_with_its_reason(alice, stripe_catalog):
    response = client_for(verify(alice)).post("/billing/plan/", {"plan": "platinum"}, follow=True)
    assert "That plan does not exist or is no longer offered." in page_text(response)


def test_stripe_errors_are_shown_and_nothing_is_charged(alice, stripe_catalog):
    stripe_catalog.fail_next("POST", "/v1/checkout/sessions")
    response = client_for(verify(alice)).post("/billing/credits/", {"pack": "pack-500"}, follow=True)
    assert "Stripe did not accept the request" in page_text(response) and "Nothing was charged." in page_text(response)


def test_owners_manage_payment_in_the_portal_and_see_invoices(alice, stripe_catalog):
    from .fake_stripe import deliver

    client = client_for(verify(alice))
    session = client.post("/billing/plan/", {"plan": "creator"})["Location"].rsplit("/", 1)[1]
    for event in stripe_catalog.checkout_complete(session).values():
        deliver(stripe_catalog, event)

    text = page_text(client.get("/billing/"))
    assert "Manage payment" in text and "$15.00" in text and "paid" in text  # the first invoice
    assert ">Downgrade<" in text and ">Upgrade<" in text
    portal = client.post("/billing/portal/")
    assert portal.status_code == 302 and portal["Location"].startswith(f"{stripe_catalog.url}/portal/bps_")


def test_usage_this_period_per_member_and_per_api_key(alice, acme, bob):
    account = ledger.account_for_team(acme)
    key, _ = apikey_create(membership=Membership.objects.get(team=acme, user=alice), name="ci server")
    common = dict(
        team=acme, prompt="p", seed=1, width=64, height=64, num_frames=9, fps=8, steps=4, guidance=5.0,
        model_name="framecast-tiny", pool="default",
    )
    for user, api_key, credits, seconds in [(alice, key, 10, 1.0), (alice, None, 5, 0.5), (bob, None, 7, 2.0)]:
        job = Job.objects.create(created_by=user, api_key=api_key, **common)
        JobCharge.objects.create(
            job_id=job.id, account=account, price_credits=credits, from_subscription=credits, video_seconds=seconds,
            via_api_key_id=api_key.pk if api_key else None, state=JobCharge.State.CAPTURED, settled_at=timezone.now(),
            member_id=user.pk,
        )
    unfinished = Job.objects.create(created_by=bob, **common)
    JobCharge.objects.create(job_id=unfinished.id, account=account, price_credits=99, from_subscription=99, video_seconds=9)

    text = visible_text(client_for(bob, acme).get("/billing/"))
    assert "alice@example.com 2 15 1.5" in text
    assert "bob@example.com 1 7 2.0" in text, "held (unfinished) jobs are not counted"
    assert f"ci server ({key.prefix}…) 1 10 1.0" in text
    Job.objects.filter(created_by=alice).delete()
    text = visible_text(client_for(bob, acme).get("/billing/"))
    assert "alice@example.com 2 15 1.5" in text, "a deleted video still counts for the member who made it"
