"""Scaling signals for each worker pool, and the number of workers it should have.

What an autoscaler (KEDA, a cloud autoscaler, bench/fleet.py) reads: the framecast_pool_*
Prometheus gauges (ops/prometheus.py) and `GET /ops/scaling/<pool>` (JSON, bearer
FRAMECAST_SCALING_TOKEN). Both come from `pool_signals` and `desired_workers` below, so the
formula lives in one place.

The formula, per pool (bounds and drain time from generation/pools.toml):

    backlog  = Σ over the pool's queued jobs of price_credits × seconds_per_credit(model)
    extra    = min(queued, max(ceil(backlog / drain_seconds), 1 if queued else 0))
    desired  = clamp(running + extra, min_workers, max_workers)

- `running` jobs each hold a worker (a worker hands its clip to a background encoder and
  takes the next job, so jobs being encoded hold none).
- The queued work, in GPU-seconds, should be worked off within `drain_seconds`: that many
  more workers, at least one while anything is queued, and never more than one per queued
  job (a worker runs one job at a time, so another would only idle).
- Throttled jobs are not counted: they wait for their own team's slots, not for a GPU.
- `seconds_per_credit(model)`: a job's credits measure its compute (pixels × frames × steps
  × the model's factor × the speed's, billing/pricing.py), so the pool's recent jobs of that
  model give GPU-seconds per credit (claim to hand-off to the encoder, the last
  RECENT_JOBS jobs of the pool within RECENT_WINDOW); a model with none yet takes the
  pool's rate over all its models, and a pool with none the `seconds_per_credit` of
  pools.toml.
"""

import math
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from generation.models import Job
from generation.pools import Pool
from gpu_workers.models import WorkerHeartbeat
from gpu_workers.selectors import stale_cutoff

RECENT_JOBS = 200
RECENT_WINDOW = timedelta(hours=6)
# Heartbeat states that mean the worker cannot take a job yet (loading its model).
NOT_WARM_STATES = frozenset({"warming", "starting", "stopping", "draining"})


@dataclass(frozen=True)
class PoolSignals:
    pool: str
    queued: int
    throttled: int
    running: int
    warm_workers: int
    busy_workers: int
    oldest_queued_seconds: float
    backlog_gpu_seconds: float


def desired_workers(signals: PoolSignals, pool: Pool) -> int:
    """The formula of the module docstring."""
    extra = 0
    if signals.queued:
        extra = min(signals.queued, max(math.ceil(signals.backlog_gpu_seconds / pool.drain_seconds), 1))
    return min(max(signals.running + extra, pool.min_workers), pool.max_workers)


def seconds_per_credit(pool: Pool, *, now=None) -> dict[str, float]:
    """GPU-seconds per credit by model, learnt from the pool's recent jobs; the key "" is
    the pool's rate over all models (or pools.toml's when it has run nothing lately)."""
    now = now or timezone.now()
    recent = (
        Job.objects.filter(pool=pool.name, encoding_at__gte=now - RECENT_WINDOW, started_at__isnull=False, price_credits__gt=0)
        .order_by("-encoding_at")
        .values_list("model_name", "price_credits", "started_at", "encoding_at")[:RECENT_JOBS]
    )
    seconds: dict[str, float] = {}
    credits: dict[str, int] = {}
    for model, price, started, handed_off in recent:
        for key in (model, ""):
            seconds[key] = seconds.get(key, 0.0) + max((handed_off - started).total_seconds(), 0.0)
            credits[key] = credits.get(key, 0) + price
    rates = {key: seconds[key] / credits[key] for key in credits if seconds[key] > 0}
    rates.setdefault("", pool.seconds_per_credit)
    return rates


def _workers(pool: Pool) -> tuple[int, int]:
    """(warm, busy) among the pool's workers with a fresh heartbeat. A worker whose beat
    says it is loading its models or stopping (its `phase`, in NOT_WARM_STATES) is not
    warm; busy counts every worker running a job, a stopping one's last job included."""
    warm = busy = 0
    beats = WorkerHeartbeat.objects.filter(last_seen_at__gte=stale_cutoff())
    for beat in beats:
        if pool.name not in beat.pool.split(","):
            continue
        busy += bool(beat.current_job_id)
        if (getattr(beat, "phase", None) or getattr(beat, "state", "")) not in NOT_WARM_STATES:
            warm += 1
    return warm, busy


def pool_signals(pool: Pool, *, now=None) -> PoolSignals:
    now = now or timezone.now()
    jobs = Job.objects.filter(pool=pool.name)
    counts = jobs.filter(state__in=[Job.State.QUEUED, Job.State.THROTTLED, Job.State.RUNNING]).aggregate(
        queued=Count("pk", filter=Q(state=Job.State.QUEUED)),
        throttled=Count("pk", filter=Q(state=Job.State.THROTTLED)),
        running=Count("pk", filter=Q(state=Job.State.RUNNING)),
        oldest=Min("queued_at", filter=Q(state=Job.State.QUEUED)),
    )
    rates = seconds_per_credit(pool, now=now)
    queued_credits = jobs.filter(state=Job.State.QUEUED).values("model_name").annotate(credits=Sum("price_credits"))
    backlog = sum(row["credits"] * rates.get(row["model_name"], rates[""]) for row in queued_credits)
    warm, busy = _workers(pool)
    return PoolSignals(
        pool=pool.name,
        queued=counts["queued"],
        throttled=counts["throttled"],
        running=counts["running"],
        warm_workers=warm,
        busy_workers=busy,
        oldest_queued_seconds=max((now - counts["oldest"]).total_seconds(), 0.0) if counts["oldest"] else 0.0,
        backlog_gpu_seconds=round(backlog, 3),
    )


def pool_scaling(pool: Pool, *, now=None) -> dict:
    """The answer of GET /ops/scaling/<pool>: the desired worker count, its bounds and the
    signals it was computed from."""
    signals = pool_signals(pool, now=now)
    return {
        "pool": pool.name,
        "desired_workers": desired_workers(signals, pool),
        "min_workers": pool.min_workers,
        "max_workers": pool.max_workers,
        "drain_seconds": pool.drain_seconds,
        "signals": {key: value for key, value in asdict(signals).items() if key != "pool"},
    }
