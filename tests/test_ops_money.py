"""The dashboard's money figures on a small, hand-computed data set.

The clock is fixed at 2026-11-20 12:00 UTC (19.5 days into November). Pools: cpu at
$0.05 per GPU-hour, h100 at $2.69 (generation/pools.toml).

  job  ended          model / pool             state      GPU-s   cost      video
  A    today 09:00    wan2.1 / h100            succeeded  3600    $2.69     81/27 = 3 s
  B    today 10:00    wan2.1 / h100            failed     1800    $1.345    -
  F    today 11:00    wan2.1 / h100 (cache)    succeeded  0       $0        - (reused A)
  G    -              wan2.1 / h100            running    -       -         -
  C    Nov 17         tiny / cpu               succeeded  720     $0.01     9/3 = 3 s
  D    Nov 10         wan2.1 / h100            succeeded  7200    $5.38     3 s
  E    Oct 11         wan2.1 / h100            succeeded  3600    $2.69     (older than 30 days)

  paid           kind           amount
  today          subscription   $20.00
  Nov 15         pack           $10.00
  Oct 31         subscription   $20.00 + usage $3.50
  Oct 6          subscription   $50.00 (older than 30 days)
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.ledger import account_for_team, credits_adjust
from billing.models import Payment, Plan
from generation.models import Job
from ops import metrics
from ops.models import JobCostDaily, RolledDay
from ops.rollups import rollups_refresh

from .conftest import client_for, page_text
from .test_ops_access import staff  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H100, CPU = Decimal("2.69"), Decimal("0.05")


def make_job(team, *, ended, model="wan2.1-t2v-1.3b", pool="h100", state="succeeded", gpu_seconds=3600.0,
             frames=81, fps=27, reused_from=None):
    price = H100 if pool == "h100" else CPU
    job = Job.objects.create(
        team=team, prompt="a lighthouse at dusk", seed=1, width=832, height=480, num_frames=frames, fps=fps, steps=50,
        guidance=5.0, model_name=model, pool=pool, state=state, reused_from=reused_from,
        video="videos/x.mp4" if state == "succeeded" else "",
        finished_at=ended, gpu_seconds=gpu_seconds if ended else None,
        cost_usd=(Decimal(str(gpu_seconds)) * price / 3600).quantize(Decimal("0.000001")) if ended else None,
    )
    Job.objects.filter(pk=job.pk).update(created_at=(ended or NOW) - timedelta(minutes=5))
    return job


def pay(stripe_id, kind, cents, paid_at, account=None):
    Payment.objects.create(stripe_id=stripe_id, kind=kind, amount_cents=cents, paid_at=paid_at, account=account)


@pytest.fixture
def world(alice, charlie):
    team = alice.personal_team
    today = NOW.replace(hour=0)
    a = make_job(team, ended=today.replace(hour=9))
    make_job(team, ended=today.replace(hour=10), state="failed", gpu_seconds=1800)
    make_job(team, ended=today.replace(hour=11), gpu_seconds=0, reused_from=a)
    make_job(team, ended=None, state="running")
    make_job(charlie.personal_team, ended=today - timedelta(days=3), model="framecast-tiny", pool="cpu",
             gpu_seconds=720, frames=9, fps=3)
    make_job(team, ended=today - timedelta(days=10), gpu_seconds=7200)
    make_job(team, ended=today - timedelta(days=40))
    pay("in_today", "subscription", 2000, NOW - timedelta(hours=1))
    pay("cs_pack", "pack", 1000, NOW - timedelta(days=5))
    pay("in_oct31", "subscription", 2000, NOW - timedelta(days=20))
    pay("in_oct31", "usage", 350, NOW - timedelta(days=20))
    pay("in_old", "subscription", 5000, NOW - timedelta(days=45))
    return team


def windows(money):
    return {label: totals for label, totals in money.windows}


def test_cost_revenue_margin_and_cost_per_video_second_equal_hand_computed_totals(world):
    figures = windows(metrics.money(now=NOW))
    today, week, month = figures["Today"], figures["7 days"], figures["30 days"]

    assert (today.cost, week.cost, month.cost) == (Decimal("4.035"), Decimal("4.045"), Decimal("9.425"))
    assert (today.revenue, week.revenue, month.revenue) == (Decimal("20"), Decimal("30"), Decimal("53.5"))
    assert month.revenue_by_kind == {"subscription": Decimal("40"), "pack": Decimal("10"), "usage": Decimal("3.5")}
    assert (today.margin, week.margin, month.margin) == (Decimal("15.965"), Decimal("25.955"), Decimal("44.075"))
    assert round(month.margin_percent, 3) == round(44.075 / 53.5 * 100, 3)
    # Failed GPU time counts as cost; only generated video counts as output (not the cache hit).
    assert (today.video_seconds, week.video_seconds, month.video_seconds) == (3.0, 6.0, 9.0)
    assert today.cost_per_video_second == Decimal("1.345")
    assert round(month.cost_per_video_second, 6) == round(Decimal("9.425") / 9, 6)
    assert (today.jobs, today.failed, month.jobs) == (3, 1, 5)


def test_cost_per_video_second_by_model_and_pool(world):
    rows = {(model, pool): t for model, pool, t in metrics.money(now=NOW).by_model_pool}
    assert set(rows) == {("wan2.1-t2v-1.3b", "h100"), ("framecast-tiny", "cpu")}
    wan, tiny = rows[("wan2.1-t2v-1.3b", "h100")], rows[("framecast-tiny", "cpu")]
    assert (wan.cost, wan.video_seconds, wan.gpu_seconds) == (Decimal("9.415"), 6.0, 12600.0)
    assert round(wan.cost_per_video_second, 6) == Decimal("1.569167")
    assert (tiny.cost, tiny.cost_per_video_second) == (Decimal("0.01"), Decimal("0.01") / 3)
    assert [model for model, _ in metrics.money(now=NOW).by_model] == ["wan2.1-t2v-1.3b", "framecast-tiny"]


def test_the_month_projection_continues_this_months_rate(world):
    money = metrics.money(now=NOW)
    # November so far: jobs A, B, C, D = $9.425 over 19.5 days; 30 days at that rate.
    assert money.month_to_date.cost == Decimal("9.425")
    assert money.month_cost_projection == Decimal("14.50")
    assert money.month_to_date.revenue == Decimal("30")
    assert money.month_revenue_projection == (Decimal(30) / Decimal("19.5") * 30).quantize(Decimal("0.01"))


def test_the_daily_series_has_thirty_days_with_each_days_cost_and_revenue(world):
    days = dict(metrics.money(now=NOW).days)
    assert len(days) == 30 and min(days) == NOW.date() - timedelta(days=29) and max(days) == NOW.date()
    assert days[NOW.date()].cost == Decimal("4.035") and days[NOW.date()].revenue == Decimal("20")
    assert days[NOW.date() - timedelta(days=20)].revenue == Decimal("23.5")
    assert days[NOW.date() - timedelta(days=1)].cost == 0


def test_rollups_give_the_same_figures_and_keep_them_after_jobs_are_deleted(world):
    before = metrics.money(now=NOW)
    built = rollups_refresh(now=NOW)
    assert len(built) == 90 and RolledDay.objects.count() == 90
    assert JobCostDaily.objects.filter(day=NOW.date() - timedelta(days=10)).get().cost_usd == Decimal("5.38")
    assert rollups_refresh(now=NOW) == [NOW.date() - timedelta(days=2), NOW.date() - timedelta(days=1)], "only the last two again"

    Job.objects.filter(finished_at__lt=NOW.replace(hour=0)).delete()  # rolled-up days no longer need the jobs
    after = metrics.money(now=NOW)
    assert [(label, t.cost, t.revenue, t.video_seconds) for label, t in after.windows] == [
        (label, t.cost, t.revenue, t.video_seconds) for label, t in before.windows
    ]


def test_liability_is_every_teams_unspent_credits(alice, charlie):
    free = Plan.objects.get(slug="free").monthly_credits
    account_for_team(charlie.personal_team)
    credits_adjust(alice.personal_team, amount=500, actor="test", note="goodwill")
    credits_adjust(charlie.personal_team, amount=-30, actor="test", note="refund reversal")
    assert metrics.liability() == {"plan": 2 * free - 30, "purchased": 500, "held": 0, "total": 2 * free + 470}


def test_staff_see_the_money_page_with_its_figures_and_charts(alice, staff):
    now = datetime.now(UTC)
    make_job(alice.personal_team, ended=now - timedelta(seconds=5), gpu_seconds=7200)  # $5.38, 3 s
    pay("in_now", "subscription", 4900, now - timedelta(seconds=5))
    text = page_text(client_for(staff).get("/staff/"))
    assert "$5.38" in text and "$49.00" in text and "$43.62" in text, "cost, revenue and margin"
    assert "$1.7933" in text, "cost per video-second"
    assert text.count("<rect") >= 60, "30 days × (cost, revenue) bars, and the per-model chart"
    assert "wan2.1-t2v-1.3b" in text


def test_the_rollup_task_is_on_the_beat_schedule_and_builds_the_days(world):
    from config.celery_app import app
    from ops.tasks import refresh_rollups

    assert app.conf.beat_schedule["ops.refresh_rollups"]["task"] == refresh_rollups.name == "ops.refresh_rollups"
    assert refresh_rollups() == 90
