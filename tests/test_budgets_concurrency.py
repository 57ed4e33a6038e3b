"""Budgets under real concurrency, on PostgreSQL: submissions released together by a barrier,
each thread on its own database connection (tests.conftest.at_once). The lock is decided
inside the same locked core as the credit hold, so exactly the budget's worth gets in, and
each alert threshold fires once however many submissions race past it."""

import pytest
from django.core import mail
from django.db.models import Sum
from django.test import Client

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing import budgets
from billing.models import BillingAccount, Budget, BudgetAlert, BudgetRefusals, BudgetSpend, CreditEntry, JobCharge
from generation.models import Job, WebhookDelivery

from .conftest import at_once, on_plan
from .test_budgets import end_all, owner, submit

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("tiny_default")]

ROUNDS = 20
RACERS = 100
BUDGET = 10


def outcome(result) -> str:
    return "accepted" if isinstance(result, Job) else getattr(result, "code", repr(result))


def assert_ledger_agrees(team) -> None:
    account = BillingAccount.objects.get(team=team)
    sums = account.entries.aggregate(amount=Sum("amount"), held=Sum("held_delta"))
    assert sums["amount"] == account.available
    assert (sums["held"] or 0) == account.held_credits
    held = JobCharge.objects.filter(account=account, state="held")
    assert account.held_credits == sum(c.from_subscription + c.from_purchased for c in held)
    assert min(account.entries.values_list("balance_after", flat=True)) >= 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hundred_racing_submissions_against_a_key_budget_of_ten_twenty_times(acme, alice, queue_prefix):
    """Each round: a new key with a lock budget of 10 credits a day; 100 submissions of a
    1-credit job at once with it: exactly 10 are accepted, 90 get `budget_exceeded`; then the
    round's jobs end (2 succeed, 8 are cancelled) so the next round has the team's slots."""
    team = acme
    on_plan(team, "creator")  # 2 running + 10 waiting: the ten fit, the plan refuses none of them
    membership = Membership.objects.get(team=team, user=alice)
    start = BillingAccount.objects.get(team=team).available
    for round_number in range(ROUNDS):
        key, _ = apikey_create(membership=membership, name=f"round {round_number}")
        budget = budgets.budget_create(
            actor=owner(team, alice),
            data={"scope": "api_key", "api_key": key.pk, "amount_credits": BUDGET, "period": "day", "mode": "lock"},
        )
        outcomes = [outcome(result) for result in at_once(lambda key=key: submit(team, alice, key), RACERS)]
        assert outcomes.count("accepted") == BUDGET, (round_number, sorted(set(outcomes)))
        assert outcomes.count("budget_exceeded") == RACERS - BUDGET, (round_number, sorted(set(outcomes)))
        assert Job.objects.filter(team=team, api_key=key).count() == BUDGET
        assert budgets.budget_state(budget).used == BUDGET
        assert BudgetRefusals.objects.get(budget=budget).count == RACERS - BUDGET
        assert_ledger_agrees(team)
        end_all(team)
        assert budgets.budget_state(budget).spent == 2  # the cancelled ones came back
        day_start, day_end = budgets.period_bounds("day")
        assert BudgetSpend.objects.get(budget=budget).spent_credits == budgets.spent_from_charges(budget, day_start, day_end)
    account = BillingAccount.objects.get(team=team)
    assert account.held_credits == 0
    assert account.available == start - 2 * ROUNDS
    captured = -(CreditEntry.objects.filter(account=account, kind="capture").aggregate(n=Sum("held_delta"))["n"])
    assert captured == 2 * ROUNDS
    assert_ledger_agrees(team)


@pytest.mark.django_db(transaction=True)
def test_racing_http_submissions_against_a_team_lock(acme, alice, queue_prefix):
    """The same over HTTP: 30 API calls at once against a team budget of 5 → five 201s and
    twenty-five 402 `budget_exceeded` naming the budget. On Business, whose metered overage
    would otherwise run past the balance: the lock is the brake."""
    on_plan(acme, "business")
    _, secret = apikey_create(membership=Membership.objects.get(team=acme, user=alice), name="http")
    budget = budgets.budget_create(
        actor=owner(acme, alice), data={"scope": "team", "amount_credits": 5, "period": "month", "mode": "lock"}
    )
    body = {"prompt": "a kite", "model": "framecast-tiny", "width": 64, "height": 64, "num_frames": 9, "steps": 4}

    def post():
        response = Client().post("/api/v1/videos", body, content_type="application/json",
                                 HTTP_AUTHORIZATION=f"Bearer {secret}")
        return response.status_code, response.json().get("error", {})

    results = at_once(post, 30)
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 5 and statuses.count(402) == 25, statuses
    assert {error["type"] for status, error in results if status == 402} == {"budget_exceeded"}
    assert {error["budget"]["id"] for status, error in results if status == 402} == {budget.pk}
    assert Job.objects.filter(team=acme).count() == 5
    assert_ledger_agrees(acme)


@pytest.mark.django_db(transaction=True)
def test_a_threshold_crossed_by_twenty_racing_submissions_alerts_exactly_once(
    acme, alice, bob, queue_prefix, settings
):
    """An alert-only key budget of 10 and 20 submissions at once: all 20 run (alert never
    refuses), and each threshold (50, 80, 100%) sends exactly one email and one webhook."""
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = True
    on_plan(acme, "business")  # 16 running + 500 waiting: the plan refuses none of the 20
    Membership.objects.filter(team=acme, user=bob).update(role=Membership.Role.ADMIN)
    key, _ = apikey_create(membership=Membership.objects.get(team=acme, user=alice), name="batch")
    budget = budgets.budget_create(
        actor=owner(acme, alice),
        data={"scope": "api_key", "api_key": key.pk, "amount_credits": 10, "period": "month", "mode": "alert",
              "webhook_url": "http://127.0.0.1:9/unused"},
    )
    mail.outbox.clear()
    outcomes = [outcome(result) for result in at_once(lambda: submit(acme, alice, key), 20)]
    assert outcomes.count("accepted") == 20, outcomes
    assert sorted(BudgetAlert.objects.filter(budget=budget).values_list("threshold", flat=True)) == [50, 80, 100]
    deliveries = WebhookDelivery.objects.filter(team=acme, event_type="budget.threshold_reached")
    assert sorted(d.payload["data"]["threshold_percent"] for d in deliveries) == [50, 80, 100]
    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects == ["Acme: budget at 100%", "Acme: budget at 50%", "Acme: budget at 80%"]
    assert all(sorted(message.to) == ["alice@example.com", "bob@example.com"] for message in mail.outbox)
    # Each alert fired at the submission that reached it: 5, 8 and 10 credits used.
    used = dict(BudgetAlert.objects.filter(budget=budget).values_list("threshold", "used_credits"))
    assert used == {50: 5, 80: 8, 100: 10}
    assert Budget.objects.count() == 1
