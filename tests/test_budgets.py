"""Budgets: set by owners and admins on the team, a member or an API key; `lock` refuses
jobs that would pass them (402 `budget_exceeded`, 429 in the OpenAI layer), alerts fire once
per threshold and period, periods are UTC calendar periods, and bad input is a 400 naming
the field with nothing written. The concurrency tests are in test_budgets_concurrency.py."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from PIL import Image

from accounts.api_keys import apikey_create
from accounts.models import Membership
from accounts.permissions import Actor
from billing import budgets
from billing.models import BillingAccount, Budget, BudgetAlert, BudgetRefusals, BudgetSpend, CreditEntry
from generation import services
from generation.inputs import remix_params
from generation.models import Job, WebhookDelivery
from generation.services import JobParams, job_submit

from .conftest import client_for, on_plan, page_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]

TINY = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", fps=8, guidance=5.0, seed=None,
            width=64, height=64, num_frames=9, steps=4)  # 1 credit


def params(**overrides) -> JobParams:
    return JobParams(**{**TINY, **overrides})


@pytest.fixture
def world(acme, alice, bob, charlie):
    """Acme on Creator (API access, 1500 credits): Alice owner, Bob member, Alice's key
    `ci`; Charlie's own team with a key of his."""
    on_plan(acme, "creator")
    on_plan(charlie.personal_team, "creator")
    key, secret = apikey_create(membership=Membership.objects.get(team=acme, user=alice), name="ci")
    other_key, other_secret = apikey_create(membership=Membership.objects.get(user=charlie), name="charlie's")
    return dict(team=acme, key=key, secret=secret, other_key=other_key, other_secret=other_secret)


def owner(team, user) -> Actor:
    membership = Membership.objects.get(team=team, user=user)
    return Actor(team=team, user=user, membership=membership)


def make_budget(team, user, **data) -> Budget:
    return budgets.budget_create(actor=owner(team, user), data={"period": "month", **data})


def submit(team, user, key=None, **overrides) -> Job:
    return job_submit(team=team, user=user, params=params(**overrides), api_key=key)


def succeed(job: Job) -> Job:
    job = services.job_start(job.id, worker="w")
    job = services.job_start_encoding(job, inference_seconds=0.1)
    return services.job_succeed(job, video=b"mp4", poster=b"jpg", encode_seconds=0.1)


def end_all(team) -> None:
    """Let every job of the team end: throttled ones are cancelled, queued ones succeed."""
    for job in Job.objects.filter(team=team, state=Job.State.THROTTLED):
        services.job_cancel(job.id)
    for job in Job.objects.filter(team=team, state=Job.State.QUEUED):
        succeed(job)


class Clock:
    """Frozen time: every `timezone.now()` (and auto_now) reads `now`."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    frozen = Clock(datetime(2026, 12, 1, 23, 50, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


# --- Periods ---------------------------------------------------------------------------


def test_periods_are_utc_calendar_periods():
    moment = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)  # a Thursday
    assert budgets.period_bounds("day", moment) == (datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert budgets.period_bounds("week", moment) == (datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
    assert budgets.period_bounds("month", moment) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert budgets.period_bounds("month", datetime(2028, 2, 10, tzinfo=UTC))[1] == datetime(2028, 3, 1, tzinfo=UTC)
    # A moment given in another zone is still placed in its UTC day.
    from zoneinfo import ZoneInfo

    tokyo = datetime(2027, 1, 1, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2026-12-31 23:00 UTC
    assert budgets.period_bounds("day", tokyo)[0] == datetime(2026, 12, 31, tzinfo=UTC)


# --- Lock ------------------------------------------------------------------------------


def test_a_key_lock_refuses_what_would_pass_it_and_names_the_budget(world, alice, bob):
    team, key = world["team"], world["key"]
    budget = make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=3, mode="lock", name="reseller A")
    accepted = [submit(team, alice, key) for _ in range(3)]
    with pytest.raises(budgets.BudgetExceeded) as refused:
        submit(team, alice, key)
    message = refused.value.message
    assert "reseller A" in message and "API key ci" in message and "3 of its 3 credits" in message
    assert "resets at" in message and "UTC" in message
    assert refused.value.details["budget"]["id"] == budget.pk
    assert refused.value.details["budget"]["current_period"]["remaining_credits"] == 0
    assert Job.objects.filter(team=team).count() == 3
    # The key's budget is the key's: the studio (no key) and Bob are not limited by it.
    assert submit(team, alice).state in (Job.State.QUEUED, Job.State.THROTTLED)
    assert submit(team, bob).pk
    assert BudgetRefusals.objects.get(budget=budget).count == 1
    # Released credits do not count: cancelling a held job makes room for one more.
    services.job_cancel(accepted[-1].id)
    assert submit(team, alice, key).pk


def test_team_and_member_locks_apply_to_everyone_and_to_the_member(world, alice, bob):
    team, key = world["team"], world["key"]
    make_budget(team, alice, scope="member", member="bob@example.com", amount_credits=1, mode="lock")
    submit(team, bob)
    with pytest.raises(budgets.BudgetExceeded, match="bob@example.com"):
        submit(team, bob)
    submit(team, alice, key)  # Alice has no member budget
    make_budget(team, alice, scope="team", amount_credits=3, mode="lock", period="day")
    submit(team, alice, key)  # 2 held + 1: exactly 3
    with pytest.raises(budgets.BudgetExceeded, match="daily budget of the team"):
        submit(team, alice, key)
    with pytest.raises(budgets.BudgetExceeded, match="daily budget of the team"):
        submit(team, alice)


def test_an_alert_budget_never_refuses(world, alice):
    team = world["team"]
    make_budget(team, alice, scope="team", amount_credits=1, mode="alert")
    for _ in range(3):
        submit(team, alice)
    assert Job.objects.filter(team=team).count() == 3


def test_remixes_and_image_input_count_like_any_job(world, alice):
    team, key = world["team"], world["key"]
    source = succeed(submit(team, alice, key))
    make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=1, mode="lock")
    with pytest.raises(budgets.BudgetExceeded):
        job_submit(team=team, user=alice, params=remix_params(source, prompt="a boat", strength=0.5), api_key=key)
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(image, format="PNG")
    files_before = sorted(p.name for p in _media_files())
    with pytest.raises(budgets.BudgetExceeded):
        submit(team, alice, key, input_image=image.getvalue())
    assert sorted(p.name for p in _media_files()) == files_before, "a refused job stores no file"
    with pytest.raises(budgets.BudgetExceeded):
        submit(team, alice, key, speed="fast")
    assert Job.objects.filter(team=team).count() == 1


def _media_files():
    from django.conf import settings

    from pathlib import Path

    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def test_a_video_reused_from_the_cache_costs_nothing_and_passes_a_spent_budget(world, alice):
    team = world["team"]
    first = succeed(submit(team, alice, seed=7))
    make_budget(team, alice, scope="team", amount_credits=1, mode="lock")
    again = submit(team, alice, seed=7)  # the same request: the finished video again, for 0 credits
    assert again.reused_from_id == first.pk and again.price_credits == 0


def test_the_rest_api_answers_402_budget_exceeded_with_the_budget(world, alice, client):
    team, key, secret = world["team"], world["key"], world["secret"]
    make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=1, mode="lock", period="week")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    body = {"prompt": "a kite", "model": "framecast-tiny", "width": 64, "height": 64, "num_frames": 9, "steps": 4}
    assert client.post("/api/v1/videos", body, content_type="application/json", **auth).status_code == 201
    refused = client.post("/api/v1/videos", body, content_type="application/json", **auth)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded" and "weekly budget" in error["message"]
    assert error["budget"]["scope"] == "api_key" and error["budget"]["api_key"]["id"] == key.pk
    assert error["budget"]["amount_credits"] == 1 and error["budget"]["price_credits"] == 1
    assert error["budget"]["current_period"]["end"].endswith("T00:00:00Z")
    assert Job.objects.filter(team=team).count() == 1


def test_the_openai_layer_answers_429_budget_exceeded_and_says_not_to_retry(world, alice, client):
    team, key, secret = world["team"], world["key"], world["secret"]
    make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=1, mode="lock")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    body = {"prompt": "a kite", "model": "framecast-tiny", "size": "64x64", "seconds": "1"}
    assert client.post("/openai/v1/videos", body, content_type="application/json", **auth).status_code == 200
    refused = client.post("/openai/v1/videos", body, content_type="application/json", **auth)
    assert refused.status_code == 429 and refused["x-should-retry"] == "false"
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "monthly budget" in error["message"]


def test_the_studio_shows_the_refusal_and_the_alert_notice(world, alice, bob):
    team = world["team"]
    make_budget(team, alice, scope="team", amount_credits=1, mode="lock", thresholds=[100])
    form = {"prompt": "a kite", "model_name": "framecast-tiny", "width": "64", "height": "64", "num_frames": "9",
            "fps": "8", "steps": "4", "guidance": "5"}
    bob_browser = client_for(bob, team)
    first = bob_browser.post("/", form)
    assert first.status_code == 302, page_text(first)
    refused = bob_browser.post("/", form)
    assert refused.status_code == 402
    assert "would pass the monthly budget of the team" in page_text(refused)
    studio = page_text(bob_browser.get("/"))
    assert "budget of the team is at 100%, past its 100% alert: 1 of 1 credits spent or held" in " ".join(studio.split())


# --- Alerts and period roll-over (frozen time) -----------------------------------------


def test_the_lock_lifts_when_the_period_resets_and_alerts_fire_again(world, alice, clock, mailoutbox):
    team, key = world["team"], world["key"]
    budget = make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=2, mode="lock", period="day",
                         thresholds=[50, 100])
    for _ in range(2):
        succeed(submit(team, alice, key))
    with pytest.raises(budgets.BudgetExceeded, match="resets at 2026-12-02 00:00 UTC"):
        submit(team, alice, key)
    assert sorted(BudgetAlert.objects.filter(budget=budget).values_list("threshold", flat=True)) == [50, 100]
    clock.now = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    job = submit(team, alice, key)  # a new day: nothing spent yet
    state = budgets.budget_state(budget)
    assert (state.spent, state.held, state.period_start) == (0, 1, datetime(2026, 12, 2, tzinfo=UTC))
    alerts = BudgetAlert.objects.filter(budget=budget, period_start=state.period_start)
    assert list(alerts.values_list("threshold", flat=True)) == [50]
    assert job.pk


def test_each_threshold_alerts_once_by_email_and_signed_webhook(
    world, alice, bob, mailoutbox, settings, django_capture_on_commit_callbacks, queue_prefix
):
    from standardwebhooks.webhooks import Webhook

    from generation.webhooks import webhook_deliver

    from .test_customer_webhooks import Receiver

    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = True
    receiver = Receiver()
    team, key = world["team"], world["key"]
    Membership.objects.filter(team=team, user=bob).update(role=Membership.Role.ADMIN)
    budget = make_budget(team, alice, scope="team", amount_credits=4, mode="alert", webhook_url=receiver.url)
    try:
        for _ in range(6):
            with django_capture_on_commit_callbacks(execute=True):
                submit(team, alice, key)
        deliveries = WebhookDelivery.objects.filter(event_type="budget.threshold_reached").order_by("created_at")
        assert deliveries.count() == 3 and all(d.job_id is None for d in deliveries)
        for delivery in deliveries:
            webhook_deliver(delivery.id)
        events = [Webhook(team.webhook_secret).verify(body, headers) for headers, body in receiver.requests]
    finally:
        receiver.close()
    assert [event["data"]["threshold_percent"] for event in events] == [50, 80, 100]
    assert {event["type"] for event in events} == {"budget.threshold_reached"}
    assert events[0]["data"]["budget"]["id"] == budget.pk and events[0]["api_version"]
    assert events[0]["data"]["used_credits"] == 2 and events[2]["data"]["used_credits"] == 4
    assert len(mailoutbox) == 3
    assert sorted(mailoutbox[0].to) == ["alice@example.com", "bob@example.com"]  # owners and admins
    assert "has reached 50%" in mailoutbox[0].body and "2 of 4 credits" in mailoutbox[0].body
    assert "It only alerts" in mailoutbox[0].body


def test_the_kept_spend_is_the_charges_sum_and_a_period_change_starts_it_afresh(world, alice, clock):
    team, key = world["team"], world["key"]
    old = succeed(submit(team, alice, key))  # before any budget: counted from the charges
    budget = make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=100, period="day")
    assert not BudgetSpend.objects.exists() and budgets.budget_state(budget).spent == 1
    for _ in range(3):
        succeed(submit(team, alice, key))
    services.job_cancel(submit(team, alice, key).id)  # released: not spent
    kept = BudgetSpend.objects.get(budget=budget)
    start, end = budgets.period_bounds("day")
    assert kept.spent_credits == budgets.spent_from_charges(budget, start, end) == 4 == budgets.budget_state(budget).spent
    # Day to month on the 1st: both periods start at the same instant, so the day's row must go.
    clock.now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    succeed(submit(team, alice, key))
    assert budgets.budget_state(budget).spent == 1
    budgets.budget_update(actor=owner(team, alice), budget_id=budget.pk, data={"period": "month"})
    assert not BudgetSpend.objects.filter(budget=budget).exists()
    budget.refresh_from_db()
    assert budgets.budget_state(budget).spent == 5 and old.pk


# --- Who may see and change budgets ----------------------------------------------------


def api(client, method: str, path: str, body=None, **headers):
    call = getattr(client, method)
    if body is None:
        return call(f"/api/v1/{path}", **headers)
    return call(f"/api/v1/{path}", body, content_type="application/json", **headers)


def test_owners_and_admins_change_budgets_members_and_keys_only_read(world, alice, bob):
    team, key, secret = world["team"], world["key"], world["secret"]
    alice_browser, bob_browser = client_for(alice, team), client_for(bob, team)
    created = api(alice_browser, "post", "budgets", {"scope": "api_key", "api_key": f"fc_{key.prefix}", "amount_credits": 50,
                                                     "period": "day", "mode": "lock"})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["thresholds"], body["api_key"]["id"], body["current_period"]["remaining_credits"]) == ([50, 80, 100], key.pk, 50)
    team_budget = api(alice_browser, "post", "budgets", {"scope": "team", "amount_credits": 500, "period": "month"}).json()
    bobs = api(alice_browser, "post", "budgets", {"scope": "member", "member": bob.pk, "amount_credits": 5, "period": "week"})
    assert bobs.status_code == 201 and bobs.json()["member"]["email"] == "bob@example.com"

    # Bob sees the team's budget and his own, not the budget of Alice's key; he changes none.
    seen = {b["id"] for b in api(bob_browser, "get", "budgets").json()["data"]}
    assert seen == {team_budget["id"], bobs.json()["id"]}
    assert api(bob_browser, "get", f"budgets/{body['id']}").status_code == 404
    assert api(bob_browser, "patch", f"budgets/{team_budget['id']}", {"amount_credits": 10**6}).status_code == 403
    assert api(bob_browser, "delete", f"budgets/{team_budget['id']}").status_code == 403
    assert api(bob_browser, "post", "budgets", {"scope": "team", "amount_credits": 1, "period": "day"}).status_code == 403
    # A key (even its owner's) reads its own and the team's, and cannot raise its own limit.
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    seen_by_key = {b["id"] for b in api(alice_browser, "get", "budgets", **auth).json()["data"]}
    assert seen_by_key == {team_budget["id"], body["id"]}
    raised = api(alice_browser, "patch", f"budgets/{body['id']}", {"amount_credits": 10**6}, **auth)
    assert raised.status_code == 403
    assert Budget.objects.get(pk=body["id"]).amount_credits == 50

    changed = api(alice_browser, "patch", f"budgets/{body['id']}", {"amount_credits": 60, "mode": "alert"})
    assert changed.status_code == 200 and (changed.json()["amount_credits"], changed.json()["mode"]) == (60, "alert")
    assert api(alice_browser, "delete", f"budgets/{body['id']}").status_code == 204
    assert not Budget.objects.filter(pk=body["id"]).exists()


def test_budgets_of_another_team_are_404(world, alice, charlie):
    team = world["team"]
    budget = make_budget(team, alice, scope="team", amount_credits=10)
    charlie_browser = client_for(charlie)
    for method, body in (("get", None), ("patch", {"amount_credits": 1}), ("delete", None)):
        assert api(charlie_browser, method, f"budgets/{budget.pk}", body).status_code == 404
    assert api(charlie_browser, "get", "budgets").json()["data"] == []
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world['other_secret']}"}
    assert api(charlie_browser, "get", f"budgets/{budget.pk}", **auth).status_code == 404
    assert Budget.objects.get(pk=budget.pk).amount_credits == 10
    # Naming another team's key or member is a 404, as for one that does not exist.
    alice_browser = client_for(alice, team)
    for data in ({"scope": "api_key", "api_key": world["other_key"].pk}, {"scope": "member", "member": "charlie@example.com"},
                 {"scope": "api_key", "api_key": 999999}, {"scope": "member", "member": "nobody@example.com"}):
        response = api(alice_browser, "post", "budgets", {**data, "amount_credits": 5, "period": "day"})
        assert response.status_code == 404, data
    assert Budget.objects.count() == 1


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"amount_credits": -5}, "amount_credits", "whole number from 1"),
        ({"amount_credits": 0}, "amount_credits", "whole number from 1"),
        ({"amount_credits": 10**12}, "amount_credits", "1,000,000,000"),
        ({"amount_credits": "lots"}, "amount_credits", "whole number"),
        ({"amount_credits": 2.5}, "amount_credits", "whole number"),
        ({"amount_credits": True}, "amount_credits", "whole number"),
        ({"period": "year"}, "period", "day, week, month"),
        ({"mode": "block"}, "mode", "alert, lock"),
        ({"scope": "planet"}, "scope", "team, member, api_key"),
        ({"thresholds": [50, 150]}, "thresholds", "from 1 to 100"),
        ({"thresholds": [50, 50]}, "thresholds", "repeat"),
        ({"thresholds": "fifty"}, "thresholds", "whole number"),
        ({"webhook_url": "ftp://example.com/x"}, "webhook_url", "http"),
        ({"webhook_url": "http://10.0.0.1/hook"}, "webhook_url", "public address"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"member": "bob@example.com"}, "member", "Only a budget with scope “member”"),
        ({"scope": "member", "member": None}, None, None),  # a 404: no member named
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(world, alice, data, field, words):
    browser = client_for(alice, world["team"])
    response = api(browser, "post", "budgets", {"scope": "team", "amount_credits": 10, "period": "day", **data})
    if field is None:
        assert response.status_code == 404
    else:
        assert response.status_code == 400, response.json()
        error = response.json()["error"]
        assert error["field"] == field and words in error["message"], error
    assert not Budget.objects.exists()


def test_a_second_budget_for_the_same_target_and_period_is_a_409(world, alice):
    browser = client_for(alice, world["team"])
    assert api(browser, "post", "budgets", {"scope": "team", "amount_credits": 10, "period": "day"}).status_code == 201
    again = api(browser, "post", "budgets", {"scope": "team", "amount_credits": 20, "period": "day"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    assert api(browser, "post", "budgets", {"scope": "team", "amount_credits": 300, "period": "month"}).status_code == 201
    assert Budget.objects.count() == 2


def test_the_budgets_page_sets_and_shows_budgets_for_owners_and_reads_for_members(world, alice, bob):
    team, key = world["team"], world["key"]
    alice_browser = client_for(alice, team)
    response = alice_browser.post("/billing/budgets/", {"scope": "api_key", "api_key": str(key.pk), "member": "",
                                                        "amount_credits": "25", "period": "day", "mode": "lock",
                                                        "thresholds": "50, 90", "name": "batch", "webhook_url": ""})
    assert response.status_code == 302, page_text(response)
    budget = Budget.objects.get()
    assert (budget.amount_credits, budget.thresholds, budget.mode) == (25, [50, 90], "lock")
    bad = alice_browser.post("/billing/budgets/", {"scope": "team", "amount_credits": "-1", "period": "day", "mode": "lock"})
    assert bad.status_code == 400 and "whole number from 1" in page_text(bad)
    text = page_text(alice_browser.get("/billing/budgets/"))
    assert "UTC calendar period" in text and "key ci" in text and "Set budget" in text
    changed = alice_browser.post(f"/billing/budgets/{budget.pk}/", {"amount_credits": "30", "mode": "alert"})
    assert changed.status_code == 302 and Budget.objects.get().amount_credits == 30
    bob_browser = client_for(bob, team)
    members_view = page_text(bob_browser.get("/billing/budgets/"))
    assert "Set budget" not in members_view and "Only team owners and admins can change budgets." in members_view
    assert bob_browser.post(f"/billing/budgets/{budget.pk}/delete/").status_code == 403
    assert alice_browser.post(f"/billing/budgets/{budget.pk}/delete/").status_code == 302
    assert not Budget.objects.exists()


def test_the_ledger_stays_consistent_and_refusals_write_nothing(world, alice):
    team, key = world["team"], world["key"]
    make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=2, mode="lock")
    account = BillingAccount.objects.get(team=team)
    submit(team, alice, key)
    submit(team, alice, key)
    entries = CreditEntry.objects.filter(account=account).count()
    for _ in range(3):
        with pytest.raises(budgets.BudgetExceeded):
            submit(team, alice, key)
    assert CreditEntry.objects.filter(account=account).count() == entries
    assert not BudgetAlert.objects.filter(used_credits__gt=2).exists()
    assert timezone.now() - timedelta(minutes=1) < BudgetAlert.objects.first().fired_at


# --- Operator side ---------------------------------------------------------------------


def test_staff_see_a_teams_budgets_and_the_money_page_counts_refusals_by_budget(world, alice, admin_client):
    team, key = world["team"], world["key"]
    budget = make_budget(team, alice, scope="api_key", api_key=key.pk, amount_credits=1, mode="lock", period="day")
    make_budget(team, alice, scope="team", amount_credits=900, mode="alert")
    submit(team, alice, key)
    for _ in range(3):
        with pytest.raises(budgets.BudgetExceeded):
            submit(team, alice, key)
    from .test_billing_pages import visible_text

    customer = visible_text(admin_client.get(f"/staff/teams/{team.pk}/"))
    assert "key ci" in customer and "1 a day" in customer and "locked" in customer and "900 a month" in customer
    assert BudgetRefusals.objects.get(budget=budget).count == 3
    money = visible_text(admin_client.get("/staff/"))
    assert "Submissions refused by budgets" in money
    assert "Acme 1 credits a day, key ci 3 3 3" in money
    assert admin_client.get("/admin/billing/budget/").status_code == 200
    assert admin_client.get(f"/admin/billing/budget/{budget.pk}/change/").status_code == 200
    assert admin_client.get("/admin/billing/budgetalert/").status_code == 200
