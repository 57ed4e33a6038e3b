"""The figures on the staff dashboard, computed in one place.

Money: GPU cost is each job's `cost_usd` (its GPU-seconds at its pool's price, recorded
when it ends) on the day it ended; revenue is what Stripe was paid (billing.Payment, from
the webhooks) on the day it was paid; gross margin is revenue minus GPU cost. Cost per
video-second divides all GPU cost (failed jobs burn GPU time too) by the seconds of video
actually generated (succeeded jobs, not ones reused from the result cache)."""

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from billing.models import BillingAccount, Payment, Plan
from generation.models import Job
from gpu_workers.selectors import worker_statuses

from .rollups import cost_rows, day_start

WINDOWS = (("Today", 1), ("7 days", 7), ("30 days", 30))
CENT = Decimal("0.01")


@dataclass
class Totals:
    """Cost and revenue over some days (money in US dollars, as Decimal)."""

    cost: Decimal = Decimal(0)
    gpu_seconds: float = 0.0
    video_seconds: float = 0.0
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    revenue_by_kind: dict = field(default_factory=lambda: {kind: Decimal(0) for kind in Payment.Kind.values})

    def add_cost(self, row: dict) -> None:
        self.cost += Decimal(row["cost_usd"] or 0)
        self.gpu_seconds += row["gpu_seconds"] or 0.0
        self.video_seconds += row["video_seconds"] or 0.0
        self.jobs += row["jobs"]
        self.succeeded += row["succeeded"]
        self.failed += row["failed"]

    @property
    def revenue(self) -> Decimal:
        return sum(self.revenue_by_kind.values(), Decimal(0))

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> float | None:
        return float(self.margin / self.revenue * 100) if self.revenue else None

    @property
    def cost_per_video_second(self) -> Decimal | None:
        return self.cost / Decimal(str(self.video_seconds)) if self.video_seconds else None

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600


@dataclass
class Money:
    now: datetime
    windows: list[tuple[str, Totals]]
    days: list[tuple[date, Totals]]  # the last 30 days, oldest first
    by_model_pool: list[tuple[str, str, Totals]]  # the last 30 days
    by_model: list[tuple[str, Totals]]  # the last 30 days, costliest first
    month_to_date: Totals
    month_cost_projection: Decimal
    month_revenue_projection: Decimal
    liability: dict


def _revenue_rows(first: date) -> list[dict]:
    return list(
        Payment.objects.filter(paid_at__gte=day_start(first))
        .annotate(day=TruncDate("paid_at"))
        .values("day", "kind")
        .annotate(cents=Sum("amount_cents"))
        .order_by()
    )


def liability() -> dict:
    """Credits granted or sold and not spent yet, over all teams."""
    sums = BillingAccount.objects.aggregate(
        plan=Sum("subscription_credits"), purchased=Sum("purchased_credits"), held=Sum("held_credits")
    )
    sums = {key: value or 0 for key, value in sums.items()}
    return {**sums, "total": sums["plan"] + sums["purchased"] + sums["held"]}


def money(*, now: datetime | None = None) -> Money:
    now = now or timezone.now()
    today = now.date()
    month_start = today.replace(day=1)
    first = min(today - timedelta(days=29), month_start)
    per_day: dict[date, Totals] = defaultdict(Totals)
    per_model_pool: dict[tuple[str, str], Totals] = defaultdict(Totals)
    for row in cost_rows(first, now):
        per_day[row["day"]].add_cost(row)
        if row["day"] > today - timedelta(days=30):
            per_model_pool[(row["model_name"], row["pool"])].add_cost(row)
    for row in _revenue_rows(first):
        per_day[row["day"]].revenue_by_kind[row["kind"]] += Decimal(row["cents"]) / 100

    def over(days: list[date]) -> Totals:
        total = Totals()
        for day in days:
            part = per_day.get(day)
            if part is None:
                continue
            total.add_cost({"cost_usd": part.cost, "gpu_seconds": part.gpu_seconds, "video_seconds": part.video_seconds,
                            "jobs": part.jobs, "succeeded": part.succeeded, "failed": part.failed})
            for kind, amount in part.revenue_by_kind.items():
                total.revenue_by_kind[kind] += amount
        return total

    last_days = [today - timedelta(days=n) for n in range(29, -1, -1)]
    windows = [(label, over(last_days[-count:])) for label, count in WINDOWS]
    month = over([month_start + timedelta(days=n) for n in range((today - month_start).days + 1)])
    # At this month's rate so far: what was spent per elapsed second, over the whole month.
    elapsed = Decimal(str((now - day_start(month_start)).total_seconds() / 86400))
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    by_model: dict[str, Totals] = defaultdict(Totals)
    for (model_name, _pool), totals in per_model_pool.items():
        by_model[model_name].add_cost({"cost_usd": totals.cost, "gpu_seconds": totals.gpu_seconds,
                                       "video_seconds": totals.video_seconds, "jobs": totals.jobs,
                                       "succeeded": totals.succeeded, "failed": totals.failed})
    return Money(
        now=now,
        windows=windows,
        days=[(day, per_day.get(day) or Totals()) for day in last_days],
        by_model_pool=[(model, pool, totals) for (model, pool), totals in sorted(per_model_pool.items())],
        by_model=sorted(by_model.items(), key=lambda item: item[1].cost, reverse=True),
        month_to_date=month,
        month_cost_projection=(month.cost / elapsed * days_in_month).quantize(CENT) if elapsed else Decimal(0),
        month_revenue_projection=(month.revenue / elapsed * days_in_month).quantize(CENT) if elapsed else Decimal(0),
        liability=liability(),
    )


# --- Operations ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil
    return ordered[int(rank) - 1]


def tier_names() -> dict[int, str]:
    names: dict[int, list[str]] = defaultdict(list)
    for plan in Plan.objects.filter(is_active=True).order_by("order"):
        names[plan.queue_priority].append(plan.name)
    return {priority: " / ".join(plans) for priority, plans in names.items()}


@dataclass
class QueueRow:
    pool: str
    priority: int
    tier: str
    queued: int = 0
    throttled: int = 0
    waiting_p50: float | None = None  # seconds the jobs now in the queue have waited
    waiting_p95: float | None = None
    started_last_hour: int = 0
    wait_p50: float | None = None  # queue wait of the jobs that started in the last hour
    wait_p95: float | None = None


def queues(now: datetime) -> list[QueueRow]:
    tiers = tier_names()
    rows: dict[tuple[str, int], QueueRow] = {}

    def row(pool: str, priority: int) -> QueueRow:
        key = (pool, priority)
        if key not in rows:
            rows[key] = QueueRow(pool=pool, priority=priority, tier=tiers.get(priority, f"priority {priority}"))
        return rows[key]

    ages: dict[tuple[str, int], list[float]] = defaultdict(list)
    waiting = Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.THROTTLED]).values_list(
        "pool", "priority", "state", "queued_at", "created_at"
    )
    for pool, priority, state, queued_at, created_at in waiting.iterator(chunk_size=5000):
        target = row(pool, priority)
        if state == Job.State.THROTTLED:
            target.throttled += 1
        else:
            target.queued += 1
            ages[(pool, priority)].append((now - (queued_at or created_at)).total_seconds())
    waits: dict[tuple[str, int], list[float]] = defaultdict(list)
    started = Job.objects.filter(started_at__gte=now - timedelta(hours=1), queue_seconds__isnull=False).values_list(
        "pool", "priority", "queue_seconds"
    )
    for pool, priority, seconds in started:
        row(pool, priority).started_last_hour += 1
        waits[(pool, priority)].append(seconds)
    for key, target in rows.items():
        target.waiting_p50, target.waiting_p95 = percentile(ages[key], 0.5), percentile(ages[key], 0.95)
        target.wait_p50, target.wait_p95 = percentile(waits[key], 0.5), percentile(waits[key], 0.95)
    return sorted(rows.values(), key=lambda r: (r.pool, -r.priority))


@dataclass
class Operations:
    now: datetime
    queues: list[QueueRow]
    running: list[Job]
    running_count: int
    running_by_pool: dict[str, int]
    workers: list
    worker_counts: dict[str, dict[str, int]]
    failures: list[dict]
    failures_total: int
    jobs_per_hour: list[tuple[datetime, int]]


def operations(*, now: datetime | None = None) -> Operations:
    now = now or timezone.now()
    active = Job.objects.filter(state__in=[Job.State.RUNNING, Job.State.ENCODING])
    running_by_pool = dict(active.values("pool").annotate(n=Count("pk")).order_by().values_list("pool", "n"))
    workers = worker_statuses()
    worker_counts: dict[str, dict[str, int]] = defaultdict(
        lambda: {"healthy": 0, "busy": 0, "warming": 0, "stopping": 0, "stale": 0, "running": 0}
    )
    for status in workers:
        worker_counts[status.worker.pool][status.status] += 1
    for pool, count in running_by_pool.items():
        worker_counts[pool]["running"] = count
    failures = list(
        Job.objects.filter(state=Job.State.FAILED, finished_at__gte=now - timedelta(days=7))
        .values("error_message")
        .annotate(n=Count("*"))
        .order_by("-n", "error_message")
    )
    counts = dict(
        Job.objects.filter(created_at__gte=now - timedelta(hours=24))
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(n=Count("*"))  # not COUNT(id): the created_at index alone answers it
        .order_by()
        .values_list("hour", "n")
    )
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=n) for n in range(23, -1, -1)]
    return Operations(
        now=now,
        queues=queues(now),
        running=list(active.select_related("team").order_by("started_at")[:50]),
        running_count=sum(running_by_pool.values()),
        running_by_pool=running_by_pool,
        workers=workers,
        worker_counts=dict(sorted(worker_counts.items())),
        failures=failures[:20],
        failures_total=sum(row["n"] for row in failures),
        jobs_per_hour=[(hour, counts.get(hour, 0)) for hour in hours],
    )
