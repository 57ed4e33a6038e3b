"""GET /api/v1/usage: a team's usage over UTC days, grouped by day, model, API key, member or
pool, as JSON and CSV. Its totals are the ledger's own sums for the same window, whichever
way it is grouped, and they are what the budgets count."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing import budgets
from billing.models import BillingAccount, CreditEntry
from billing.usage_export import GROUPS, usage_export
from generation import services

from .conftest import client_for, on_plan, page_text
from .test_budgets import Clock, owner, submit, succeed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]


@pytest.fixture
def history(acme, alice, bob, charlie, monkeypatch):
    """Two UTC days of Acme's jobs through two keys and the studio, by Alice and Bob, on two
    models: succeeded, failed, cancelled and still running. Charlie's team has
    its own jobs, which must never show up in Acme's export."""
    from django.utils import timezone

    clock = Clock(datetime(2026, 12, 1, 23, 30, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", clock)
    on_plan(acme, "pro")
    on_plan(charlie.personal_team, "creator")
    membership = Membership.objects.get(team=acme, user=alice)
    key_a, secret_a = apikey_create(membership=membership, name="=reseller A")  # a formula-looking name
    key_b, _ = apikey_create(membership=membership, name="batch")
    big = dict(width=128, height=128, num_frames=17, steps=20)  # more than 1 credit
    toy = dict(model_name="framecast-toy", width=32, height=32, num_frames=9, steps=25, fps=8)
    plan = [
        (alice, key_a, {}, "succeed"), (alice, key_a, big, "succeed"), (bob, None, {}, "fail"),
        (alice, key_b, toy, "succeed"), (bob, None, big, "cancel"), (alice, None, {}, "succeed"),
    ]
    for user, key, overrides, end in plan:
        job = submit(acme, user, key, **overrides)
        _end(job, end)
    clock.now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # the second day
    for user, key, overrides, end in [*plan, (alice, key_a, {}, "run"), (bob, None, toy, "run")]:
        _end(submit(acme, user, key, **overrides), end)
    _end(submit(charlie.personal_team, charlie), "succeed")
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    return dict(team=acme, key_a=key_a, key_b=key_b, secret_a=secret_a, clock=clock)


def _end(job, how: str) -> None:
    if how == "succeed":
        succeed(job)
    elif how == "fail":
        services.job_fail(job.id, reason="boom")
    elif how == "cancel":
        services.job_cancel(job.id)


def ledger_sums(account, start: datetime, end: datetime) -> dict:
    entries = CreditEntry.objects.filter(account=account, created_at__gte=start, created_at__lt=end)
    captures = entries.filter(kind="capture").aggregate(n=Count("pk"), credits=Sum("held_delta"))
    releases = entries.filter(kind="release").aggregate(n=Count("pk"), credits=Sum("amount"))
    return {
        "jobs_succeeded": captures["n"], "credits_from_balance": -(captures["credits"] or 0),
        "jobs_released": releases["n"], "credits_released": releases["credits"] or 0,
    }


WINDOW = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC))


@pytest.mark.parametrize("group_by", GROUPS)
def test_the_totals_equal_the_ledgers_sums_grouped_every_way(history, group_by):
    account = BillingAccount.objects.get(team=history["team"])
    export = usage_export(account, start=WINDOW[0].date(), end=datetime(2026, 12, 2).date(), group_by=group_by)
    totals = export.totals
    expected = ledger_sums(account, *WINDOW)
    assert {name: getattr(totals, name) for name in expected} == expected
    assert (totals.jobs_succeeded, totals.jobs_released, totals.jobs_in_progress) == (8, 4, 2)
    # What is still held is the ledger's held bucket (this plan covered every job from its balance).
    assert totals.credits_held == account.held_credits == account.entries.aggregate(n=Sum("held_delta"))["n"]
    assert totals.credits_spent == totals.credits_from_balance + totals.overage_credits
    assert sum(row.credits_spent for row in export.rows) == totals.credits_spent
    assert len({row.group for row in export.rows}) == len(export.rows)


def test_each_day_is_the_ledgers_day(history):
    account = BillingAccount.objects.get(team=history["team"])
    export = usage_export(account, start=WINDOW[0].date(), end=datetime(2026, 12, 2).date(), group_by="day")
    captured = dict(
        CreditEntry.objects.filter(account=account, kind="capture")
        .annotate(day=TruncDate("created_at", tzinfo=UTC)).values("day").annotate(n=Sum("held_delta")).values_list("day", "n")
    )
    assert {row.group: row.credits_from_balance for row in export.rows} == {day: -n for day, n in captured.items()}
    assert len(export.rows) == 2
    # A one-day window is that day only.
    first = usage_export(account, start=WINDOW[0].date(), end=WINDOW[0].date(), group_by="model")
    assert first.totals.credits_from_balance == ledger_sums(account, WINDOW[0], datetime(2026, 12, 2, tzinfo=UTC))[
        "credits_from_balance"]


def test_by_key_member_model_and_pool_label_their_rows(history):
    account = BillingAccount.objects.get(team=history["team"])
    day = dict(start=WINDOW[0].date(), end=datetime(2026, 12, 2).date())
    keys = {row.label: row for row in usage_export(account, group_by="api_key", **day).rows}
    assert set(keys) == {f"=reseller A (fc_{history['key_a'].prefix}…)", f"batch (fc_{history['key_b'].prefix}…)",
                         "(no key: studio)"}
    assert keys["(no key: studio)"].jobs_released == 4
    members = {row.label for row in usage_export(account, group_by="member", **day).rows}
    assert members == {"alice@example.com", "bob@example.com"}
    assert {row.label for row in usage_export(account, group_by="model", **day).rows} == {"framecast-tiny", "framecast-toy"}
    assert {row.label for row in usage_export(account, group_by="pool", **day).rows} == {"cpu"}


def test_a_budgets_spend_is_the_exports_spend_for_its_period(history, alice):
    team = history["team"]
    budget = budgets.budget_create(actor=owner(team, alice), data={"scope": "api_key", "api_key": history["key_a"].pk,
                                                                   "amount_credits": 1000, "period": "day"})
    state = budgets.budget_state(budget)
    export = usage_export(BillingAccount.objects.get(team=team), start=state.period_start.date(),
                          end=state.period_start.date(), group_by="api_key")
    row = next(row for row in export.rows if row.group == history["key_a"].pk)
    assert (state.spent, state.held) == (row.credits_spent, row.credits_held)
    assert state.held > 0 and state.spent > 0


def test_the_api_exports_json_and_csv_with_the_same_figures(history, client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {history['secret_a']}"}
    query = "from=2026-12-01&to=2026-12-02&group_by=api_key"
    body = client.get(f"/api/v1/usage?{query}", **auth).json()
    assert (body["from"], body["to"], body["group_by"]) == ("2026-12-01", "2026-12-02", "api_key")
    assert "by_member" not in body  # the plan-period lists only come without parameters
    assert body["totals"]["jobs"] == {"succeeded": 8, "released": 4, "in_progress": 2}
    for response in (client.get(f"/api/v1/usage?{query}&format=csv", **auth),
                     client.get(f"/api/v1/usage?{query}", HTTP_ACCEPT="text/csv", **auth)):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        total = rows[-1]
        assert total["label"] == "total" and int(total["credits_spent"]) == body["totals"]["credits_spent"]
        assert float(total["video_seconds"]) == pytest.approx(body["totals"]["video_seconds"])
        assert any(row["label"].startswith("'=reseller A") for row in rows), "no formula reaches a spreadsheet"
        assert len(rows) == len(body["rows"]) + 1


def test_without_parameters_the_answer_keeps_its_earlier_fields(history, client):
    body = client.get("/api/v1/usage", HTTP_AUTHORIZATION=f"Bearer {history['secret_a']}").json()
    assert {"period_start", "by_member", "by_api_key", "rows", "totals", "from", "to"} <= set(body)
    assert body["group_by"] == "day"


@pytest.mark.parametrize(
    "query, field",
    [("from=yesterday", "from"), ("to=2026-13-01", "to"), ("from=2026-12-02&to=2026-12-01", "to"),
     ("from=2025-01-01&to=2026-12-01", "to"), ("group_by=colour", "group_by")],
)
def test_a_bad_window_or_grouping_is_a_400_naming_it(history, client, query, field):
    response = client.get(f"/api/v1/usage?{query}&format=csv", HTTP_AUTHORIZATION=f"Bearer {history['secret_a']}")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["field"] == field


def test_another_teams_usage_is_never_in_the_export(history, charlie):
    own = client_for(charlie).get("/api/v1/usage?from=2026-12-01&to=2026-12-02&group_by=member").json()
    assert [row["label"] for row in own["rows"]] == ["charlie@example.com"]
    assert own["totals"]["jobs"]["succeeded"] == 1


def test_the_usage_page_shows_budgets_a_daily_chart_and_keys(history, alice, bob):
    team = history["team"]
    budgets.budget_create(actor=owner(team, alice), data={"scope": "team", "amount_credits": 5000, "period": "month",
                                                          "mode": "lock"})
    response = client_for(bob, team).get("/billing/usage/")
    assert response.status_code == 200
    text = page_text(response)
    assert "the whole team" in text and "5000 credits a month" in text
    assert "<svg" in response.content.decode() and "Dec 01" in text and "credits spent" in text
    assert "=reseller A" in text and "format=csv" in response.content.decode()


def test_an_unknown_format_is_a_400_naming_it(history, client):
    response = client.get("/api/v1/usage?format=xlsx", HTTP_AUTHORIZATION=f"Bearer {history['secret_a']}")
    assert response.status_code == 400 and response.json()["error"]["field"] == "format"
