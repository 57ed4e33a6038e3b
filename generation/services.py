"""Generation actions. Every change of a job's state goes through `job_transition`."""

import logging
import secrets
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import ledger, pricing, quotas
from billing.models import BillingAccount

from . import catalog, events
from .models import Job

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "gpu_workers.run_job"


class InvalidTransition(Exception):
    """The job is not in a state that allows the requested change (already claimed,
    finished or cancelled)."""


@dataclass(frozen=True)
class JobParams:
    prompt: str
    negative_prompt: str
    model_name: str
    seed: int | None
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int
    guidance: float


def job_quote(params: JobParams) -> int:
    """The job's price in credits (shown before submission, held at submission)."""
    spec = catalog.get_model(params.model_name)
    return pricing.price_credits(
        credit_factor=spec.credit_factor,
        width=params.width,
        height=params.height,
        num_frames=params.num_frames,
        steps=params.steps,
    )


def job_submit(*, team, user, params: JobParams, api_key=None, pool: str | None = None) -> Job:
    """Check the plan's limits, hold the price, record the job and queue it once committed.

    The team's billing account is locked for the whole decision, so concurrent submissions
    of one team are serialised: they can neither overdraw the balance nor overrun the
    concurrency limit. Raises quotas.SubmissionRefused with nothing written.
    """
    price = job_quote(params)
    with transaction.atomic():
        account = ledger.account_for_team(team, lock=True)
        plan = account.plan
        quotas.check_submission(
            account,
            quotas.Request(
                width=params.width,
                height=params.height,
                num_frames=params.num_frames,
                fps=params.fps,
                steps=params.steps,
                price=price,
                via_api=api_key is not None,
            ),
        )
        jobs = Job.objects.filter(team=team)
        state = Job.State.QUEUED
        if jobs.filter(state__in=Job.ACTIVE).count() >= plan.concurrent_jobs:
            if jobs.filter(state=Job.State.THROTTLED).count() >= plan.backlog:
                raise quotas.SubmissionRefused(
                    f"The team already has {plan.concurrent_jobs} job(s) running and {plan.backlog} waiting, "
                    f"the most the {plan.name} plan allows. Wait for one to finish, or upgrade your plan.",
                    status=429,
                    code="backlog_full",
                )
            state = Job.State.THROTTLED
        job = Job.objects.create(
            team=team,
            created_by=user,
            api_key=api_key,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            model_name=params.model_name,
            # Random when not given, and always recorded, so any video can be reproduced.
            seed=params.seed if params.seed is not None else secrets.randbelow(2**32),
            width=params.width,
            height=params.height,
            num_frames=params.num_frames,
            fps=params.fps,
            steps=params.steps,
            guidance=params.guidance,
            pool=pool or settings.GPU_POOL,
            state=state,
            queued_at=timezone.now() if state == Job.State.QUEUED else None,
            price_credits=price,
        )
        ledger.credits_hold(
            account,
            job_id=job.id,
            price=price,
            video_seconds=job.duration_seconds,
            api_key_id=api_key.pk if api_key else None,
        )
        if state == Job.State.QUEUED:
            transaction.on_commit(lambda: job_dispatch(job))
    return job


def job_dispatch(job: Job) -> None:
    """Send the job to its pool's queue; a job that cannot be queued fails at once (and
    its credits return) rather than sitting in `queued` forever."""
    try:
        current_app.send_task(RUN_JOB_TASK, args=[str(job.id)], queue=job.queue)
    except Exception as error:  # noqa: BLE001 - any broker error means the job was not queued
        logger.exception("Could not queue job %s", job.id)
        job_fail(job.id, reason="The job could not be queued; please try again.", detail=repr(error))
        return
    events.publish(job.id, {"type": "queued"})


def jobs_promote_throttled(team_id) -> list[Job]:
    """Move the team's oldest throttled jobs to the queue while the plan has free slots."""
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().select_related("plan").filter(team_id=team_id).first()
        if account is None:
            return []
        jobs = Job.objects.filter(team_id=team_id)
        free = account.plan.concurrent_jobs - jobs.filter(state__in=Job.ACTIVE).count()
        promoted = []
        for job_id in jobs.filter(state=Job.State.THROTTLED).order_by("created_at").values_list("pk", flat=True)[: max(free, 0)]:
            promoted.append(job_transition(job_id, Job.State.QUEUED))
        for job in promoted:
            transaction.on_commit(lambda job=job: job_dispatch(job))
    return promoted


def _job_end(job_id, to: str, **changes) -> Job:
    """Enter a terminal state and settle the job's credits in the same transaction: captured
    on success, released otherwise. Then a throttled job of the team may take the slot."""
    with transaction.atomic():
        job = job_transition(job_id, to, **changes)
        if to == Job.State.SUCCEEDED:
            ledger.credits_capture(job.id)
        else:
            ledger.credits_release(job.id)
        transaction.on_commit(lambda: events.publish(job.id, events.terminal_event(job)))
        transaction.on_commit(lambda: jobs_promote_throttled(job.team_id))
    return job


def job_transition(job_id, to: str, **changes) -> Job:
    """Move a job to state `to` if the state machine allows it from its current state.

    The conditional UPDATE is also the claim: of two workers handed the same job, only
    one changes the row; the other gets InvalidTransition.
    """
    allowed_from = [state for state, targets in Job.TRANSITIONS.items() if to in targets]
    stamp = Job.STATE_TIMESTAMPS.get(to)
    if stamp:
        changes[stamp] = timezone.now()
    updated = Job.objects.filter(pk=job_id, state__in=allowed_from).update(state=to, **changes)
    if updated != 1:
        current = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        raise InvalidTransition(f"Job {job_id} cannot go from '{current}' to '{Job.State(to).value}'.")
    return Job.objects.get(pk=job_id)


def job_start(job_id, *, worker: str) -> Job:
    job = job_transition(job_id, Job.State.RUNNING, worker=worker, attempts=F("attempts") + 1, progress_step=0)
    events.publish(job.id, {"type": "started"})
    return job


def job_report_step(job: Job, *, step: int, eta_seconds: float | None) -> None:
    # Stored so that a page reloaded mid-job resumes at the right step.
    Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(progress_step=step)
    events.publish(
        job.id,
        {
            "type": "step",
            "i": step,
            "n": job.steps,
            "eta_seconds": None if eta_seconds is None else round(eta_seconds, 1),
        },
    )


def job_start_encoding(job: Job, *, inference_seconds: float) -> Job:
    job = job_transition(job.pk, Job.State.ENCODING, inference_seconds=inference_seconds)
    events.publish(job.id, {"type": "encoding"})
    return job


def job_succeed(job: Job, *, video: bytes, poster: bytes, encode_seconds: float) -> Job:
    """Store the files, then mark the job succeeded. If the job was cancelled meanwhile,
    the files are removed again so that no orphan video is left behind."""
    storage = Job._meta.get_field("video").storage
    video_name = storage.save(Job._meta.get_field("video").generate_filename(job, f"{job.id}.mp4"), ContentFile(video))
    poster_name = storage.save(
        Job._meta.get_field("poster").generate_filename(job, f"{job.id}.jpg"), ContentFile(poster)
    )
    try:
        return _job_end(job.pk, Job.State.SUCCEEDED, video=video_name, poster=poster_name, encode_seconds=encode_seconds)
    except InvalidTransition:
        storage.delete(video_name)
        storage.delete(poster_name)
        raise


def job_cancel(job_id) -> Job:
    """Cancel a job that has not ended: its credits return at once. A running job's worker
    notices at its next denoising step (`job_is_cancelled`) and stops. Raises
    InvalidTransition for a job that has already ended."""
    return _job_end(job_id, Job.State.CANCELLED)


def job_is_cancelled(job_id) -> bool:
    return Job.objects.filter(pk=job_id, state=Job.State.CANCELLED).exists()


def job_fail(job_id, *, reason: str, detail: str = "") -> Job | None:
    """Fail a job that has not ended yet. Returns None if it already had."""
    try:
        return _job_end(job_id, Job.State.FAILED, error_message=reason[:500], error_detail=detail)
    except InvalidTransition:
        return None


def jobs_recover_after_restart() -> tuple[int, int]:
    """For the embedded mode only, where the broker lives in the server's memory: after a
    restart, queued jobs are queued again and jobs that were mid-run are failed (their
    worker died with the process). Returns (requeued, failed)."""
    # Listed before failing the interrupted jobs: failing them promotes throttled jobs,
    # which are dispatched by that promotion and must not be sent twice.
    queued = list(Job.objects.filter(state=Job.State.QUEUED))
    failed = 0
    for job_id in Job.objects.filter(state__in=[Job.State.RUNNING, Job.State.ENCODING]).values_list("pk", flat=True):
        if job_fail(job_id, reason="The server restarted while this video was being generated; please try again."):
            failed += 1
    for job in queued:
        job_dispatch(job)
    return len(queued), failed


def jobs_delete_files(jobs) -> None:
    """Delete the stored files of `jobs` once the surrounding transaction commits (a rolled
    back deletion must not lose videos)."""
    names = [name for job in jobs for name in (job.video.name, job.poster.name) if name]
    storage = Job._meta.get_field("video").storage

    def delete() -> None:
        for name in names:
            storage.delete(name)

    transaction.on_commit(delete)
