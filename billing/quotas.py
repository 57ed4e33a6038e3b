"""What a team's plan allows at submission: one check, one clear refusal.

Each refusal names the limit, and how to lift it, and carries the HTTP status the API
answers with (402 for money, 403 for what the plan does not include, 429 for a full backlog or queue)."""

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


class QueueFull(SubmissionRefused):
    """The team has as many jobs waiting to start as its plan allows (max_queued_jobs)."""

    status = 429
    code = "queue_full"


def check_admission(plan, *, active: int, queued: int, throttled: int) -> bool:
    """The plan's queue rules for a team with `active` jobs queued or running, `queued` of
    them not started yet, and `throttled` waiting for a slot (the caller holds the team's
    lock): True if a new job must wait its turn (throttled), False if it may be queued now.

    Raises SubmissionRefused (429): `backlog_full` when the slots are full and so is the
    backlog of throttled jobs; `queue_full` when the team already has max_queued_jobs jobs
    waiting to start (queued or throttled), so that one team cannot fill a pool's queue."""
    must_wait = active >= plan.concurrent_jobs
    if must_wait and throttled >= plan.backlog:
        raise SubmissionRefused(
            f"The team already has {plan.concurrent_jobs} job(s) running and {plan.backlog} waiting, "
            f"the most the {plan.name} plan allows. Wait for one to finish, or upgrade your plan.",
            status=429,
            code="backlog_full",
        )
    if queued + throttled >= plan.max_queued_jobs:
        raise QueueFull(
            f"The team already has {queued + throttled} jobs waiting to start, the most the {plan.name} plan "
            f"allows in the queue. Wait for one to start, or upgrade your plan on the Billing page."
        )
    return must_wait
