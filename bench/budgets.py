"""bench/budgets: what budgets cost in job_submit's locked core, for a busy team.

Creates a PostgreSQL database of its own (default fc_bench_budgets; it is DROPped and made
again), gives one team a month of history (--charges captured job charges this month,
spread over 50 API keys and 20 members), then times
`job_submit` (price 1, through one key) with no budget, and with a team, a member and a
key budget (lock, monthly) that apply to every submission. Also times the usage export of
the month grouped each way. Prints medians and p95 in ms, and the ratio of the medians.

    .venv/bin/python bench/budgets.py --charges 200000 --runs 200
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from dashboard import percentile, prepare_database  # noqa: E402


def timed(action, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        tick = time.perf_counter()
        action()
        times.append((time.perf_counter() - tick) * 1000)
    return times


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"{label:<44} {median:9.2f} {percentile(times, 0.95):9.2f}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/fc_bench_budgets")
    parser.add_argument("--charges", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    prepare_database(args.database_url, reuse=False)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["FRAMECAST_DEFAULT_MODEL"] = "framecast-tiny"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts.api_keys import apikey_create
    from accounts.models import Membership
    from accounts.permissions import Actor
    from accounts.services import user_signup
    from billing import budgets, ledger
    from billing.models import BillingAccount, JobCharge, Plan
    from billing.usage_export import GROUPS, usage_export
    from generation import services
    from generation.models import Job
    from generation.params import JobParams

    owner = user_signup(email="owner@bench.example", password="correct horse battery")
    from accounts.teams import team_create

    team = team_create(user=owner, name="Busy")
    ledger.account_for_team(team)
    BillingAccount.objects.filter(team=team).update(plan=Plan.objects.get(slug="business"), purchased_credits=10**8)
    membership = Membership.objects.get(team=team, user=owner)
    members = [owner] + [
        Membership.objects.create(
            team=team, user=user_signup(email=f"m{n}@bench.example", password="correct horse battery")
        ).user
        for n in range(19)
    ]
    keys = [apikey_create(membership=membership, name=f"key {n}")[0] for n in range(50)]
    account = BillingAccount.objects.get(team=team)
    now = timezone.now()
    month_start = budgets.period_bounds("month", now)[0]
    print(f"Seeding {args.charges:,} captured charges this month ...")
    batch = 20_000
    for first in range(0, args.charges, batch):
        charges = []
        for n in range(first, min(first + batch, args.charges)):
            job_id = uuid.uuid4()
            settled = month_start + (now - month_start) * ((n + 0.5) / args.charges)
            charges.append(JobCharge(
                job_id=job_id, account=account, price_credits=3, from_purchased=3, video_seconds=1.0,
                via_api_key_id=keys[n % 50].pk, member_id=members[n % 20].pk, model_name="framecast-tiny",
                pool="cpu", state="captured", settled_at=settled,
            ))
        JobCharge.objects.bulk_create(charges)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_jobcharge")
    params = JobParams(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=None, width=64,
                       height=64, num_frames=9, fps=8, steps=4, guidance=5.0)
    services.job_dispatch = lambda job: None  # no broker here: the jobs only wait

    def submit():
        services.job_submit(team=team, user=owner, params=params, api_key=keys[0])
        Job.objects.filter(team=team, state__in=["queued", "throttled"]).update(state="cancelled")
        JobCharge.objects.filter(account=account, state="held").update(state="released")

    print(f"\n{'job_submit (locked core and all)':<44} {'median':>9} {'p95':>9}  (ms, {args.runs} runs)")
    submit()  # warm
    without = report("no budget", timed(submit, args.runs))
    actor = Actor(team=team, user=owner, membership=membership)
    for data in ({"scope": "team"}, {"scope": "member", "member": owner.pk}, {"scope": "api_key", "api_key": keys[0].pk}):
        budgets.budget_create(actor=actor, data={**data, "amount_credits": 10**9, "period": "month", "mode": "lock"})
    with_budgets = report("team + member + key budgets (lock, month)", timed(submit, args.runs))
    print(f"ratio of medians: {with_budgets / without:.2f}×")
    state = budgets.budget_state(budgets.budgets_applying(account)[0])
    print(f"team budget this month: {state.spent:,} credits spent over {JobCharge.objects.count():,} charges")

    print(f"\n{'usage export, this month':<44} {'median':>9} {'p95':>9}")
    for group in GROUPS:
        report(f"group_by={group}", timed(
            lambda group=group: usage_export(account, start=month_start.date(), end=now.date(), group_by=group), 10
        ))


if __name__ == "__main__":
    main()
