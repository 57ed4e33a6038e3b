"""Suspending a team's generation, and lifting it: the one place that decides whether a
team may submit jobs for safety reasons. A suspended team keeps its gallery, its members
and its credits; only new jobs are refused (generation.services.job_submit asks here)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Suspension

SUSPENDED_MESSAGE = (
    "Video generation is suspended for this team pending a review by our staff ({reason}). "
    "Your videos stay available; contact support if you think this is a mistake."
)


def active_suspension(team) -> Suspension | None:
    return Suspension.objects.filter(team=team, lifted_at__isnull=True).first()


def suspend_team(team, *, reason: str, by=None) -> Suspension:
    """Suspend `team`'s generation (`by`: the staff member, or None for an automatic rule).
    Suspending a team already suspended returns the existing suspension unchanged."""
    reason = reason.strip()
    if not reason:
        raise ValueError("A suspension needs a reason.")
    try:
        with transaction.atomic():
            return Suspension.objects.create(team=team, reason=reason, created_by=by)
    except IntegrityError:
        # The partial unique index allows one active suspension per team: a concurrent
        # suspension won, and that one stands.
        return active_suspension(team)


def restore_team(team, *, by) -> None:
    """Lift the team's active suspension, if any."""
    Suspension.objects.filter(team=team, lifted_at__isnull=True).update(lifted_at=timezone.now(), lifted_by=by)


def suspended_message(suspension: Suspension) -> str:
    return SUSPENDED_MESSAGE.format(reason=suspension.reason.rstrip("."))
