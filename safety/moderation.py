"""Prompt moderation at submission, and the staff moderation queue.

`prompt_check` runs before any quota check, credit hold or job row (generation.services
.job_submit calls it first): it records the policy's decision, refuses with a
category-level reason, and suspends a team whose prompts were refused
FRAMECAST_SUSPEND_AFTER_REFUSALS times within FRAMECAST_SUSPEND_WINDOW_HOURS.
"""

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Membership
from core.errors import NotAllowed, Refusal
from generation.sharing import job_take_down

from . import policy
from .models import ModerationDecision, Review, Suspension, VideoReport
from .suspensions import active_suspension, suspend_team, suspended_message

class TeamSuspended(NotAllowed):
    """The team may not submit while a suspension lasts."""

    code = "team_suspended"


class PromptRefused(Refusal):
    """The content policy refuses the prompt (the reason is given by category only)."""

    status = 422
    code = "prompt_refused"


# What staff may decide on each kind of queue item.
PROMPT_DECISIONS = {"dismiss": Review.DISMISSED, "confirm": Review.CONFIRMED}
REPORT_DECISIONS = {"dismiss": Review.DISMISSED, "take_down": Review.TAKEN_DOWN}


def prompt_check(*, team, user, prompt: str, negative_prompt: str = "", via_api: bool = False) -> ModerationDecision:
    """Decide on a prompt. Raises TeamSuspended or PromptRefused (core.errors.Refusal, the
    path every submission refusal takes to the form and the API) if the team is suspended
    or the prompt is refused; a refusal is recorded, and nothing else is written then. An
    allowed or flagged prompt's decision is returned unsaved: decision_link_job records it."""
    suspension = active_suspension(team)
    if suspension is not None:
        raise TeamSuspended(suspended_message(suspension))
    # The negative prompt is checked too: it is text sent to the model like the prompt.
    verdict = policy.evaluate(prompt)
    if verdict.outcome != policy.REFUSE and negative_prompt:
        negative = policy.evaluate(negative_prompt)
        if negative.outcome == policy.REFUSE or verdict.outcome == policy.ALLOW:
            verdict = negative
    decision = ModerationDecision(
        team=team,
        user=user if user is not None and user.is_authenticated else None,
        via_api=via_api,
        prompt=prompt,
        negative_prompt=negative_prompt,
        outcome=verdict.outcome,
        category=verdict.category,
        rule=verdict.rule,
        review=Review.PENDING if verdict.outcome == policy.FLAG else "",
    )
    if verdict.outcome == policy.REFUSE:
        decision.save()
        suspended = _suspend_if_repeated(team)
        raise PromptRefused(_refusal_message(verdict, suspended), field="prompt")
    return decision  # recorded by decision_link_job, with the job it became


def decision_link_job(decision: ModerationDecision | None, job) -> None:
    """Record an allowed or flagged prompt's decision with the job it became (shown in the
    queue), in the submission's transaction: one write. `job` None: the submission was
    refused after moderation (credits, plan limits), and the decision is recorded alone."""
    if decision is None:
        return
    if job is None:  # the submission's transaction was rolled back, with any earlier save of this
        decision.pk, decision._state.adding = None, True
    decision.job = job
    decision.save()


def _refusal_message(verdict: policy.Verdict, suspended: bool) -> str:
    message = (
        f"This prompt was refused: Framecast does not generate {verdict.label}. "
        "No video was created and no credits were used."
    )
    if suspended:
        message += " Several prompts from this team were refused, so its video generation is now suspended pending a review by our staff."
    return message


def _suspend_if_repeated(team) -> bool:
    """Suspend the team if this refusal makes N within the window (counting only since the
    last suspension was lifted, so a restored team starts afresh). True if it did."""
    since = timezone.now() - timedelta(hours=settings.FRAMECAST_SUSPEND_WINDOW_HOURS)
    last_lifted = Suspension.objects.filter(team=team, lifted_at__isnull=False).aggregate(at=Max("lifted_at"))["at"]
    if last_lifted and last_lifted > since:
        since = last_lifted
    refusals = ModerationDecision.objects.filter(
        team=team, outcome=ModerationDecision.Outcome.REFUSE, created_at__gt=since
    ).count()
    if refusals < settings.FRAMECAST_SUSPEND_AFTER_REFUSALS:
        return False
    suspend_team(
        team,
        reason=f"{refusals} prompts refused within {settings.FRAMECAST_SUSPEND_WINDOW_HOURS} hours",
    )
    return True


# --- the staff queue -------------------------------------------------------------------


def flagged_queue():
    """Flagged prompts waiting for a staff decision, oldest first."""
    return (
        ModerationDecision.objects.filter(outcome=ModerationDecision.Outcome.FLAG, review=Review.PENDING)
        .select_related("team", "user", "job")
        .order_by("created_at")
    )


def report_queue():
    """Reports of shared videos waiting for a staff decision, oldest first."""
    return VideoReport.objects.filter(review=Review.PENDING).select_related("job", "job__team", "reporter").order_by("created_at")


def suspended_teams():
    return Suspension.objects.filter(lifted_at__isnull=True).select_related("team", "created_by").order_by("created_at")


class InvalidDecision(ValueError):
    pass


def decide(item: ModerationDecision | VideoReport, *, by, decision: str, note: str = "") -> None:
    """Record a staff decision on a queue item. Prompts: "dismiss" or "confirm". Reports:
    "dismiss" or "take_down" (the share link stops working and the team's owners are told
    by mail). Raises InvalidDecision for anything else or an item already decided."""
    choices = PROMPT_DECISIONS if isinstance(item, ModerationDecision) else REPORT_DECISIONS
    if decision not in choices:
        raise InvalidDecision(f"Choose one of: {', '.join(choices)}.")
    with transaction.atomic():
        # Conditional: of two staff deciding at once, one decision stands.
        updated = type(item).objects.filter(pk=item.pk, review=Review.PENDING).update(
            review=choices[decision], reviewed_by=by, reviewed_at=timezone.now(), review_note=note.strip()
        )
        if updated != 1:
            raise InvalidDecision("This item has already been reviewed.")
        if decision == "take_down":
            _take_down(item, by=by, note=note.strip())


def _take_down(report: VideoReport, *, by, note: str) -> None:
    job = job_take_down(job=report.job)
    # Every other pending report of the same video is settled by this decision.
    VideoReport.objects.filter(job=job, review=Review.PENDING).update(
        review=Review.TAKEN_DOWN, reviewed_by=by, reviewed_at=timezone.now()
    )
    owners = list(
        Membership.objects.filter(team=job.team, role=Membership.Role.OWNER).values_list("user__email", flat=True)
    )
    body = (
        f"Our staff reviewed a report about a video your team shared (prompt: \"{job.prompt[:200]}\", "
        f"made {job.created_at:%Y-%m-%d %H:%M} UTC) and took it down: its share link no longer works.\n"
        f"Reason: {report.get_reason_display()}.\n" + (f"Note from our staff: {note}\n" if note else "")
        + "The video itself stays in your team's gallery. Reply to this mail if you think this is a mistake."
    )
    transaction.on_commit(lambda: send_mail("A shared video was taken down", body, None, owners, fail_silently=True))


def report_video(job, *, reason: str, note: str = "", reporter=None) -> VideoReport:
    """Someone viewing a shared video reports it; the report waits in the staff queue."""
    if reason not in VideoReport.Reason.values:
        raise InvalidDecision(f"Choose a reason: {', '.join(VideoReport.Reason.values)}.")
    return VideoReport.objects.create(
        job=job, reason=reason, note=note.strip()[:2000],
        reporter=reporter if reporter is not None and reporter.is_authenticated else None,
    )
