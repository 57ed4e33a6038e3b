"""What a team's plan allows at submission: one check, one clear refusal.

Each refusal names the limit, and how to lift it, and carries the HTTP status the API
answers with (402 for money, 403 for what the plan does not include, 429 for backlog)."""

from collections.abc import Callable
from dataclasses import dataclass

from core.errors import Refusal

from .models import BillingAccount

UPGRADE_HINT = "Upgrade your plan on the Billing page to raise it."


class SubmissionRefused(Refusal):
    """What the team's plan or account state does not allow now."""


@dataclass(frozen=True)
class Request:
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int
    price: int
    via_api: bool


def check_submission(account: BillingAccount, request: Request) -> None:
    plan = account.plan
    if account.status == BillingAccount.Status.PAST_DUE:
        raise SubmissionRefused(
            "Your last payment failed, so new jobs are paused. Update your card on the Billing page; "
            "your gallery stays available.",
            status=402,
            code="payment_past_due",
        )
    if request.via_api and not plan.api_access:
        raise SubmissionRefused(
            f"The {plan.name} plan does not include API access. {UPGRADE_HINT}", status=403, code="plan_no_api_access"
        )
    for field, value in (("width", request.width), ("height", request.height)):
        if value > plan.max_side:
            raise SubmissionRefused(
                f"{field.capitalize()} {value} is above the {plan.name} plan's limit of {plan.max_side} pixels. {UPGRADE_HINT}",
                status=403,
                code="plan_limit_resolution",
                field=field,
            )
    duration = request.num_frames / request.fps
    if duration > plan.max_duration_seconds:
        raise SubmissionRefused(
            f"A {duration:.1f} s video is longer than the {plan.name} plan's limit of {plan.max_duration_seconds} s "
            f"(frames ÷ fps). {UPGRADE_HINT}",
            status=403,
            code="plan_limit_duration",
            field="num_frames",
        )
    if request.steps > plan.max_steps:
        raise SubmissionRefused(
            f"{request.steps} inference steps is above the {plan.name} plan's limit of {plan.max_steps}. {UPGRADE_HINT}",
            status=403,
            code="plan_limit_steps",
            field="steps",
        )
    if request.price > account.available and not plan.metered_overage:
        raise SubmissionRefused(
            f"This video costs {request.price} credits and the team has {account.available}. "
            "Buy credits or upgrade your plan on the Billing page.",
            status=402,
            code="insufficient_credits",
        )


def check_admission(plan, *, active: int, waiting: Callable[[], int]) -> bool:
    """The plan's concurrency rule for a team with `active` jobs queued or running and
    `waiting()` throttled (counted only once the slots are full: the caller holds the
    team's lock): True if a new job must wait its turn (throttled), False if it may be
    queued now. Raises SubmissionRefused (429) when the backlog is full too."""
    if active < plan.concurrent_jobs:
        return False
    if waiting() >= plan.backlog:
        raise SubmissionRefused(
            f"The team already has {plan.concurrent_jobs} job(s) running and {plan.backlog} waiting, "
            f"the most the {plan.name} plan allows. Wait for one to finish, or upgrade your plan.",
            status=429,
            code="backlog_full",
        )
    return True
