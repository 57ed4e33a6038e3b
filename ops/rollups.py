"""Daily rollups of job cost (JobCostDaily), so the money pages read a few hundred rows
instead of scanning a month of jobs. A job counts on the day it ended (UTC): that is when
its GPU time is known and paid for.

`rollups_refresh` runs from beat (ops.refresh_rollups, every 5 minutes): it builds every
day of the horizon not built yet and rebuilds the last two, which a job ending just before
midnight may still change. Pages fill any day not rolled up yet from the jobs themselves
(`job_cost_rows`), so a figure never depends on whether beat has run."""

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from generation.models import Job

from .models import JobCostDaily, RolledDay

HORIZON_DAYS = 90
REDO_DAYS = 2


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def job_cost_rows(start: datetime, end: datetime) -> list[dict]:
    """Per day, model and pool: jobs that ended in [start, end), their GPU time and cost,
    and the video-seconds delivered (succeeded jobs that ran, not ones reused from cache)."""
    delivered = Q(state=Job.State.SUCCEEDED, reused_from__isnull=True)
    return list(
        Job.objects.filter(finished_at__gte=start, finished_at__lt=end)
        .annotate(day=TruncDate("finished_at"))
        .values("day", "model_name", "pool")
        .annotate(
            jobs=Count("*"),
            succeeded=Count("state", filter=Q(state=Job.State.SUCCEEDED)),
            failed=Count("state", filter=Q(state=Job.State.FAILED)),
            gpu_seconds=Sum("gpu_seconds"),
            cost_usd=Sum("cost_usd"),
            video_seconds=Sum(Cast("num_frames", FloatField()) / F("fps"), filter=delivered),
        )
        .order_by()
    )


def _clean(row: dict) -> dict:
    return {**row, "gpu_seconds": row["gpu_seconds"] or 0.0, "cost_usd": row["cost_usd"] or 0,
            "video_seconds": row["video_seconds"] or 0.0}


@transaction.atomic
def rollups_refresh(*, now: datetime | None = None, horizon_days: int = HORIZON_DAYS) -> list[date]:
    """Build the missing days of the horizon and rebuild the last REDO_DAYS; returns them."""
    today = (now or timezone.now()).date()
    horizon = [today - timedelta(days=n) for n in range(horizon_days, 0, -1)]
    done = set(RolledDay.objects.filter(day__gte=horizon[0]).values_list("day", flat=True))
    recent = {today - timedelta(days=n) for n in range(1, REDO_DAYS + 1)}
    days = [day for day in horizon if day not in done or day in recent]
    if not days:
        return []
    wanted = set(days)
    rows = [_clean(row) for row in job_cost_rows(day_start(days[0]), day_start(days[-1] + timedelta(days=1)))
            if row["day"] in wanted]
    JobCostDaily.objects.filter(day__in=days).delete()
    JobCostDaily.objects.bulk_create([JobCostDaily(**row) for row in rows], batch_size=1000)
    stamp = timezone.now()
    RolledDay.objects.filter(day__in=days).delete()
    RolledDay.objects.bulk_create([RolledDay(day=day, computed_at=stamp) for day in days])
    return days


def cost_rows(first: date, now: datetime) -> list[dict]:
    """Cost rows for every day from `first` to today: rolled-up days from JobCostDaily, the
    others (today, and any day beat has not built) from the jobs."""
    today = now.date()
    rolled = set(RolledDay.objects.filter(day__gte=first, day__lt=today).values_list("day", flat=True))
    rows = list(
        JobCostDaily.objects.filter(day__in=rolled).values(
            "day", "model_name", "pool", "jobs", "succeeded", "failed", "gpu_seconds", "cost_usd", "video_seconds"
        )
    )
    missing = [first + timedelta(days=n) for n in range((today - first).days) if first + timedelta(days=n) not in rolled]
    if missing:
        rows += [_clean(row) for row in job_cost_rows(day_start(missing[0]), day_start(today))
                 if row["day"] not in rolled]
    rows += [_clean(row) for row in job_cost_rows(day_start(today), now + timedelta(microseconds=1))]
    return rows
