"""Credits: the ledger, prices, quotas at submission, holds, and throttling by plan."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing import ledger
from billing.models import BillingAccount, CreditEntry, JobCharge, Plan
from billing.pricing import price_credits
from billing.quotas import SubmissionRefused
from generation import services
from generation.models import Job
from generation.services import JobParams, job_quote, job_submit

from .conftest import SMALL_REQUEST, at_once, on_plan, page_text

# framecast-tiny's figures (sizes, lengths, prices), not the shipped default's, below.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]
S = Job.State

TINY = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, fps=8, guidance=5.0)


def params(**overrides) -> JobParams:
    return JobParams(**{**TINY, "width": 64, "height": 64, "num_frames": 9, "steps": 4, **overrides})


def submit(team, user, **overrides) -> Job:
    return job_submit(team=team, user=user, params=params(**overrides))


def assert_ledger_consistent(team):
    account = BillingAccount.objects.get(team=team)
    sums = account.entries.aggregate(amount=Sum("amount"), held=Sum("held_delta"))
    assert sums["amount"] == account.available
    assert (sums["held"] or 0) == account.held_credits
    held = JobCharge.objects.filter(account=account, state="held")
    assert account.held_credits == sum(c.from_subscription + c.from_purchased for c in held)


def test_a_new_team_starts_on_free_with_its_monthly_credits(alice):
    account = ledger.account_for_team(alice.personal_team)
    assert account.plan.slug == "free" and account.available == 100
    assert list(account.entries.values_list("kind", "amount")) == [("grant", 100)]


def test_prices_follow_compute_from_the_reference_job():
    reference = dict(width=832, height=480, num_frames=81, steps=50)
    assert price_credits(credit_factor=1.0, **reference) == 100
    assert price_credits(credit_factor=1.0, **{**reference, "steps": 25}) == 50
    assert price_credits(credit_factor=1.0, **{**reference, "num_frames": 161}) == 199  # ceil, not round
    assert price_credits(credit_factor=2.5, **reference) == 250
    assert price_credits(credit_factor=1.0, width=64, height=64, num_frames=9, steps=4) == 1  # at least one


def test_submission_holds_the_quoted_price_and_success_captures_exactly_that(alice, data_dirs):
    team = alice.personal_team
    on_plan(team, "creator")
    job = submit(team, alice, width=832, height=480, num_frames=81, steps=50, fps=16)
    assert job.price_credits == job_quote(params(width=832, height=480, num_frames=81, steps=50)) == 100
    account = BillingAccount.objects.get(team=team)
    assert (account.available, account.held_credits) == (1400, 100)
    job = services.job_start(job.id, worker="w")
    job = services.job_start_encoding(job, inference_seconds=1)
    services.job_succeed(job, video=b"v", poster=b"p", encode_seconds=0.1)
    account.refresh_from_db()
    assert (account.available, account.held_credits) == (1400, 0)
    assert account.entries.filter(kind="capture", job_id=job.id).get().held_delta == -100
    assert_ledger_consistent(team)


@pytest.mark.parametrize("end", ["fail", "cancel_queued", "cancel_running", "worker_lost"])
def test_failure_cancellation_and_lost_workers_release_the_hold(alice, end):
    team = alice.personal_team
    job = submit(team, alice, width=256, height=256, num_frames=33, steps=30)
    price = job.price_credits
    assert BillingAccount.objects.get(team=team).available == 100 - price
    if end == "fail":
        services.job_start(job.id, worker="w")
        services.job_fail(job.id, reason="boom")
    elif end == "cancel_queued":
        services.job_cancel(job.id)
    elif end == "cancel_running":
        services.job_start(job.id, worker="w")
        services.job_cancel(job.id)
        assert services.job_is_cancelled(job.id)
    else:  # the worker died for good: the job is failed by whoever notices
        services.job_start(job.id, worker="w")
        services.job_fail(job.id, reason="The worker running this job stopped responding.")
    account = BillingAccount.objects.get(team=team)
    assert (account.available, account.held_credits) == (100, 0)
    # Settled once: a second ending changes nothing.
    assert services.job_fail(job.id, reason="again") is None
    assert account.entries.filter(kind="release").count() == 1
    assert_ledger_consistent(team)


def test_a_hold_returns_to_the_buckets_it_came_from(alice):
    team = alice.personal_team
    ledger.credits_purchase(team, credits=50, reference="pack-1")
    ledger.credits_adjust(team, amount=-95, actor="staff@example.com", note="test: leave 5 plan credits")
    account = BillingAccount.objects.get(team=team)
    assert (account.subscription_credits, account.purchased_credits) == (5, 50)
    job = submit(team, alice, width=256, height=256, num_frames=33, steps=30)  # costs more than 5
    charge = JobCharge.objects.get(job_id=job.id)
    assert charge.from_subscription == 5 and charge.from_purchased == job.price_credits - 5
    services.job_cancel(job.id)
    account.refresh_from_db()
    assert (account.subscription_credits, account.purchased_credits) == (5, 50)


def test_not_enough_credits_refuses_with_402_and_moves_nothing(alice, alice_client, django_capture_on_commit_callbacks):
    team = alice.personal_team
    ledger.credits_adjust(team, amount=-100, actor="staff@example.com", note="test: empty")
    with django_capture_on_commit_callbacks() as dispatched:
        response = alice_client.post("/", SMALL_REQUEST)
    assert response.status_code == 402
    assert "This video costs 1 credits and the team has 0. Buy credits or upgrade" in page_text(response)
    assert not Job.objects.exists() and dispatched == []
    assert not JobCharge.objects.exists()
    assert BillingAccount.objects.get(team=team).entries.count() == 2  # grant and the adjustment only


@pytest.mark.parametrize(
    "overrides, status, field, message",
    [
        ({"width": 256, "height": 128}, 403, "width", "Width 256 is above the Free plan's limit of 128 pixels"),
        ({"num_frames": 49, "fps": 8}, 403, "num_frames", "A 6.1 s video is longer than the Free plan's limit of 5 s"),
        ({"steps": 40}, 403, "steps", "40 inference steps is above the Free plan's limit of 30"),
    ],
)
def test_plan_limits_are_refused_naming_the_limit_and_the_way_out(alice, overrides, status, field, message):
    team = alice.personal_team
    Plan.objects.filter(slug="free").update(max_side=128)  # plan limits are data
    with pytest.raises(SubmissionRefused) as refused:
        submit(team, alice, **overrides)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert message in refused.value.message and "Upgrade your plan" in refused.value.message
    assert not Job.objects.exists()
    assert ledger.account_for_team(team).available == 100


def test_past_due_stops_new_jobs_but_keeps_the_gallery(alice, alice_client):
    team = alice.personal_team
    submit(team, alice)
    BillingAccount.objects.filter(team=team).update(status="past_due")
    response = alice_client.post("/", SMALL_REQUEST)
    assert response.status_code == 402
    assert "Your last payment failed" in page_text(response)
    assert alice_client.get("/").status_code == 200
    assert Job.objects.count() == 1


def test_jobs_beyond_the_concurrency_limit_wait_throttled_then_run(alice, django_capture_on_commit_callbacks):
    team = alice.personal_team  # Free: 1 at a time, 2 waiting
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        first, second, third = (submit(team, alice) for _ in range(3))
    assert [j.state for j in (first, second, third)] == [S.QUEUED, S.THROTTLED, S.THROTTLED]
    assert len(dispatched) == 1  # only the queued one goes to a worker
    with pytest.raises(SubmissionRefused) as refused:
        submit(team, alice)
    assert refused.value.status == 429
    assert "1 job(s) running and 2 waiting" in refused.value.message
    assert Job.objects.count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        services.job_fail(first.id, reason="boom")
    second.refresh_from_db()
    third.refresh_from_db()
    assert (second.state, third.state) == (S.QUEUED, S.THROTTLED)
    assert second.queued_at is not None


def test_the_api_needs_a_plan_with_api_access(alice, client):
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    response = client.post(
        "/api/v1/videos", SMALL_REQUEST, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["message"]) == (
        "plan_no_api_access",
        "The Free plan does not include API access. Upgrade your plan on the Billing page to raise it.",
    )


def test_the_api_quotes_the_price(alice, client, django_capture_on_commit_callbacks):
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/api/v1/videos", SMALL_REQUEST, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )
    assert response.status_code == 201
    assert response.json()["price_credits"] == 1


def test_the_form_shows_the_price_before_submitting(alice_client):
    response = alice_client.get("/quote", {**SMALL_REQUEST, "width": "256", "height": "256", "num_frames": "33", "steps": "30"})
    assert response.json()["price_credits"] == job_quote(params(width=256, height=256, num_frames=33, steps=30))
    bad = alice_client.get("/quote", {**SMALL_REQUEST, "width": "100"})
    assert bad.status_code == 400 and "width" in bad.json()["errors"]


def test_plan_credits_renew_each_period_and_purchased_ones_stay(alice):
    team = alice.personal_team
    ledger.credits_purchase(team, credits=500, reference="cs_1")
    submit(team, alice)  # spends (holds) 1 plan credit
    BillingAccount.objects.filter(team=team).update(current_period_end=timezone.now() - timedelta(seconds=1))
    account = ledger.account_for_team(team)
    assert (account.subscription_credits, account.purchased_credits) == (100, 500)
    kinds = list(account.entries.order_by("pk").values_list("kind", "amount"))
    assert kinds[-2:] == [("expiry", -99), ("grant", 100)]
    assert account.current_period_end > timezone.now()


def test_purchases_are_credited_once_per_reference(alice):
    team = alice.personal_team
    assert ledger.credits_purchase(team, credits=500, reference="cs_1") is not None
    assert ledger.credits_purchase(team, credits=500, reference="cs_1") is None
    assert BillingAccount.objects.get(team=team).purchased_credits == 500


def test_the_ledger_is_append_only_and_balances_never_go_negative(alice):
    team = alice.personal_team
    account = ledger.account_for_team(team)
    entry = account.entries.get()
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        CreditEntry.objects.filter(pk=entry.pk).update(amount=1_000_000)
    with pytest.raises(TypeError, match="append-only"):
        CreditEntry.objects.all().delete()
    with pytest.raises(ledger.InsufficientCredits):
        ledger.credits_adjust(team, amount=-101, actor="staff@example.com", note="too much")
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingAccount.objects.filter(team=team).update(subscription_credits=-1)


@pytest.mark.services
def test_fifty_concurrent_submissions_against_credits_for_ten(transactional_db, alice, queue_prefix):
    """50 submissions at once, each on its own database connection; the balance covers
    exactly 10: exactly 10 are accepted, the balance ends at 0 and never went negative."""
    team = alice.personal_team
    on_plan(team, "creator")  # no metered overage: the balance is a hard limit; 2 running + 10 waiting
    price = job_quote(params())
    account = BillingAccount.objects.get(team=team)
    ledger.credits_adjust(team, amount=10 * price - account.available, actor="staff@example.com", note="race")
    outcomes = [
        "accepted" if isinstance(outcome, Job) else getattr(outcome, "code", repr(outcome))
        for outcome in at_once(lambda: submit(team, alice), 50)
    ]
    assert outcomes.count("accepted") == 10
    assert outcomes.count("insufficient_credits") == 40
    account = BillingAccount.objects.get(team=team)
    assert (account.available, account.held_credits) == (0, 10 * price)
    assert Job.objects.filter(team=team).count() == 10
    assert min(account.entries.values_list("balance_after", flat=True)) >= 0
    assert_ledger_consistent(team)


def test_metered_plans_run_past_the_balance_and_bill_only_the_uncovered_part(alice):
    from billing.models import UsageReport

    team = alice.personal_team
    on_plan(team, "pro")  # metered overage
    account = BillingAccount.objects.get(team=team)
    ledger.credits_adjust(team, amount=-(account.available - 25), actor="staff@example.com", note="leave 25")
    job = submit(team, alice, width=832, height=480, num_frames=81, steps=50, fps=16)  # costs 100
    charge = JobCharge.objects.get(job_id=job.id)
    assert (charge.from_subscription, charge.overage_credits) == (25, 75)
    assert BillingAccount.objects.get(team=team).available == 0
    job = services.job_start(job.id, worker="w")
    job = services.job_start_encoding(job, inference_seconds=1)
    services.job_succeed(job, video=b"v", poster=b"p", encode_seconds=0.1)
    report = UsageReport.objects.get()
    assert report.identifier == f"job-{job.id}"
    assert report.value == pytest.approx(81 / 16 * 0.75, abs=1e-3)
    assert_ledger_consistent(team)


def test_staff_set_plans_and_grant_credits_in_the_admin(alice, admin_client):
    account = ledger.account_for_team(alice.personal_team)
    url = f"/admin/billing/billingaccount/{account.pk}/change/"
    pro = Plan.objects.get(slug="pro")
    refused = admin_client.post(url, {"plan": pro.pk, "status": "active", "adjust_credits": "50", "adjust_note": "",
                                      "entries-TOTAL_FORMS": "0", "entries-INITIAL_FORMS": "0"})
    assert "Say why the credits change" in page_text(refused)
    response = admin_client.post(url, {"plan": pro.pk, "status": "active", "adjust_credits": "50",
                                       "adjust_note": "launch promo", "entries-TOTAL_FORMS": "0",
                                       "entries-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.plan == pro and account.available == 150
    entry = account.entries.get(kind="adjustment")
    assert (entry.amount, entry.note, entry.actor) == (50, "launch promo", "admin@example.com")


def test_the_fast_mode_is_priced_lower(alice_client):
    heavy = {**SMALL_REQUEST, "width": "256", "height": "256", "num_frames": "33", "steps": "30"}
    standard = alice_client.get("/quote", heavy).json()["price_credits"]
    fast = alice_client.get("/quote", {**heavy, "speed": "fast"}).json()["price_credits"]
    assert fast < standard
    assert price_credits(credit_factor=1.0, width=832, height=480, num_frames=81, steps=50, speed="fast") == 65
    response = alice_client.post("/", {**heavy, "speed": "fast"})
    job = Job.objects.get()
    assert (job.speed, job.price_credits) == ("fast", fast)
    bad = alice_client.post("/", {**heavy, "speed": "ludicrous"})
    assert bad.status_code == 400 and "Speed: Select a valid choice" in page_text(bad)
    assert response.status_code == 302
