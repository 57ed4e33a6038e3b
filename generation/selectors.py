"""Reads of jobs. Every view and consumer reaches a job through `job_for_team`."""

from django.db.models import Count, F, Min, OuterRef, Subquery
from django.http import Http404
from django.utils import timezone

from .models import Job


def job_for_team(team, job_id) -> Job:
    """The team's job, or Http404 — also when the job exists but belongs to another team,
    so that nobody learns which ids exist."""
    if team is None:
        raise Http404("No such job.")
    job = Job.objects.filter(team=team, pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    return job


def teams_in_turn(in_tier, pool: str) -> list:
    """The teams with queued jobs in `in_tier` (one tier of one pool), in the order the
    claim serves them (services.job_claim_next): least recently served in `pool` first,
    never served before anyone, then by the team's best dispatch key."""
    last_start = (
        Job.objects.filter(pool=pool, team_id=OuterRef("team_id"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    return list(
        in_tier.order_by()
        .values("team_id")
        .annotate(head=Min("dispatch_key"), served=Subquery(last_start))
        .order_by(F("served").asc(nulls_first=True), "head")
        .values_list("team_id", flat=True)
    )


def job_queue_position(job: Job) -> int | None:
    """1 = next to start on its pool; None unless the job waits in the queue.

    The claim's order, as things stand: within the job's tier, each other team gets as many
    turns before it as its own team has jobs ahead of it, one more if that team's turn comes
    first; the tier's jobs take the tier's places (its dispatch keys in order), and jobs of
    other tiers with smaller keys than the job's place go before it. Jobs handed back by a
    lost worker go first."""
    if job.state != Job.State.QUEUED or job.dispatch_key is None:
        return None
    queued = Job.objects.filter(pool=job.pool, state=Job.State.QUEUED)
    tier = queued.filter(priority=job.priority)
    if job.attempts:
        ahead = tier.filter(attempts__gt=0, dispatch_key__lt=job.dispatch_key).count()
    else:
        own = tier.filter(team_id=job.team_id, dispatch_key__lt=job.dispatch_key).count()
        waiting = dict(tier.values("team_id").annotate(n=Count("pk")).values_list("team_id", "n"))
        order = teams_in_turn(tier, job.pool)
        if job.team_id not in order:
            return None  # claimed (or cancelled) between these reads: no longer waiting
        mine = order.index(job.team_id)
        others = sum(min(waiting[team], own + (index < mine)) for index, team in enumerate(order) if team != job.team_id)
        ahead = own + others + tier.filter(attempts__gt=0).count()
    place = next(iter(tier.order_by("dispatch_key").values_list("dispatch_key", flat=True)[
        min(ahead, max(tier.count() - 1, 0)):][:1]), None)
    if place is None:
        return None  # the tier emptied between these reads: the job is no longer waiting
    ahead += queued.exclude(priority=job.priority).filter(dispatch_key__lt=place).count()
    return ahead + 1


def job_eta_seconds(job: Job) -> float | None:
    """Seconds left for a running job, from its pace so far."""
    if job.state != Job.State.RUNNING or not job.progress_step or not job.started_at:
        return None
    elapsed = (timezone.now() - job.started_at).total_seconds()
    return round(elapsed / job.progress_step * (job.steps - job.progress_step), 1)
