"""Generation actions. Every change of a job's state goes through `job_transition`."""

import copy as copy_module
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from billing import budgets, ledger, pricing, quotas
from billing.models import BillingAccount
from core.db import update_returning
from core.errors import InvalidInput
from core.outages import retrying_while_database_unavailable

from . import catalog, content_policy, events, payloads, pools, webhooks
from .models import Job
from .params import JobParams
from .selectors import teams_in_turn
from .storage import job_file_store, job_files_delete, job_files_prune, referenced_names

logger = logging.getLogger(__name__)

RUN_NEXT_TASK = "gpu_workers.run_next"


class InvalidTransition(Exception):
    """The job is not in a state that allows the requested change (already claimed,
    finished or cancelled)."""


def job_quote(params: JobParams) -> int:
    """The job's price in credits (shown before submission, held at submission)."""
    spec = catalog.get_model(params.model_name)
    return pricing.price_credits(
        credit_factor=spec.credit_factor,
        width=params.width,
        height=params.height,
        num_frames=params.num_frames,
        steps=params.steps,
        speed=params.speed,
        speed_factor=spec.speed_price_factor(params.speed),
        loras=len(params.loras or ()),
    )


def _queue_fields(priority: int) -> dict:
    """Fields a job gets each time it enters the queue: when, and its place in the pool's
    queue — its arrival time minus a head start for its plan's priority."""
    now = timezone.now()
    return {
        "queued_at": now,
        "dispatch_key": now.timestamp() - priority * settings.FRAMECAST_PRIORITY_HEAD_START_SECONDS,
    }


def _notify(job: Job, event_type: str) -> None:
    """Queue the job's webhook event, if it has a webhook (the payload is built only when
    someone will receive it)."""
    if job.webhook_url:
        webhooks.webhook_enqueue(job, event_type, payloads.webhook_data(job), version=payloads.WEBHOOK_PAYLOAD_VERSION)


@dataclass(frozen=True)
class Submission:
    """A request made ready outside any lock: moderated, priced, routed and keyed."""

    params: JobParams
    moderation: object
    price: int
    pool: str
    seed: int
    request_key: str


def job_submit(*, team, user, params: JobParams, api_key=None, webhook_url: str = "", metadata=None) -> Job:
    """Check the plan's limits, hold the price, record the job and queue it once committed.
    Raises a core.errors.Refusal (moderation, plan, backlog, budget) with nothing written."""
    submission = _submission_prepare(team=team, user=user, params=params, via_api=api_key is not None)
    try:
        with budgets.refusals_counted():
            return _submission_admit(
                submission, team=team, user=user, api_key=api_key, webhook_url=webhook_url, metadata=metadata
            )
    except Exception:
        # Refused after moderation (or failed): the moderated prompt is recorded all the same,
        # unless the database is what failed; the refusal or the error is what the caller gets.
        try:
            content_policy.decision_link_job(submission.moderation, None)
        except Exception:  # noqa: BLE001
            logger.warning("Could not record the moderation decision of a refused submission", exc_info=True)
        raise


def _submission_prepare(*, team, user, params: JobParams, via_api: bool) -> Submission:
    """Everything that needs no lock: the content policy first (a refused prompt or a
    suspended team gets no job and holds no credits; only the moderation decision is
    recorded), then the price, the pool and the seed."""
    pool = pools.pool_for_job(params.model_name, width=params.width, height=params.height, num_frames=params.num_frames)
    refused = pools.engine_refusal(
        pool, speed=params.speed, remix=params.strength is not None, loras=bool(params.loras)
    )
    if refused:
        raise InvalidInput(refused[1], code="unsupported_by_engine", field=refused[0])
    moderation = content_policy.prompt_check(
        team=team, user=user, prompt=params.prompt, negative_prompt=params.negative_prompt, via_api=via_api
    )
    # Random when not given, and always recorded, so any video can be reproduced.
    seed = params.seed if params.seed is not None else secrets.randbelow(2**32)
    return Submission(
        params=params, moderation=moderation, price=job_quote(params), pool=pool.name, seed=seed,
        request_key=params.request_key(seed=seed),
    )


def _submission_admit(submission: Submission, *, team, user, api_key, webhook_url: str, metadata) -> Job:
    """The short locked core. The team's billing account is locked for the whole decision,
    so concurrent submissions of one team are serialised: they can neither overdraw the
    balance nor overrun the concurrency limit."""
    params = submission.params
    with transaction.atomic():
        account = ledger.account_for_team(team, lock=True)
        plan = account.plan
        # Only a request that names its seed can match an earlier one exactly.
        cached = _cached_result(team, submission.request_key) if params.seed is not None else None
        quotas.check_submission(
            account,
            quotas.Request(
                width=params.width,
                height=params.height,
                num_frames=params.num_frames,
                fps=params.fps,
                steps=params.steps,
                price=0 if cached else submission.price,
                via_api=api_key is not None,
            ),
        )
        fields = dict(
            **params.job_fields(seed=submission.seed),
            team=team,
            created_by=user,
            api_key=api_key,
            pool=submission.pool,
            priority=plan.queue_priority,
            webhook_url=webhook_url,
            metadata=metadata or {},
            request_key=submission.request_key,
        )
        if cached is not None:
            job = _job_reuse(cached, fields)
            content_policy.decision_link_job(submission.moderation, job)
            return job
        # The money first: a budget that refuses the job says so whatever the queue holds.
        member_id, api_key_id = (user.pk if user is not None else None), (api_key.pk if api_key else None)
        spend = budgets.budgets_check(account, price=submission.price, member_id=member_id, api_key_id=api_key_id)
        throttled = quotas.check_admission(plan, **_team_queue_counts(team))
        state = Job.State.THROTTLED if throttled else Job.State.QUEUED
        job = Job.objects.create(
            **fields,
            state=state,
            price_credits=submission.price,
            **(_queue_fields(plan.queue_priority) if state == Job.State.QUEUED else {}),
        )
        if params.input_image:
            job.input_image = job_file_store(job.id, "input_image", params.input_image)
            job.save(update_fields=["input_image"])
        content_policy.decision_link_job(submission.moderation, job)
        ledger.credits_hold(
            account,
            job_id=job.id,
            price=submission.price,
            video_seconds=job.duration_seconds,
            api_key_id=api_key_id,
            member_id=member_id,
            model_name=job.model_name,
            pool=job.pool,
        )
        spend.record(job_id=job.id, notify=webhooks.budget_alert_enqueue)
        if state == Job.State.QUEUED:
            transaction.on_commit(lambda: job_dispatch(job))
    return job


def _team_queue_counts(team) -> dict:
    """The team's jobs that take a slot (`active`), those of them not started (`queued`) and
    those waiting for a slot (`throttled`), in one query."""
    waiting = [*Job.ACTIVE, Job.State.THROTTLED]
    return Job.objects.filter(team=team, state__in=waiting).aggregate(
        active=Count("pk", filter=Q(state__in=Job.ACTIVE)),
        queued=Count("pk", filter=Q(state=Job.State.QUEUED)),
        throttled=Count("pk", filter=Q(state=Job.State.THROTTLED)),
    )


def _cached_result(team, request_key: str) -> Job | None:
    # Within the team only: a reused video is the same file, watermarked for the first job,
    # and reusing it across teams would tell one team what another made. (The id first: a
    # miss, the usual answer, then costs a narrow read.)
    found = (
        Job.objects.filter(team=team, request_key=request_key, state=Job.State.SUCCEEDED)
        .exclude(video="")
        .order_by("-finished_at")
        .values_list("pk", flat=True)
        .first()
    )
    return None if found is None else Job.objects.get(pk=found)


def _job_reuse(source: Job, fields: dict) -> Job:
    """A new job that is already done: a copy of `source`'s files, no GPU, no credits."""
    now = timezone.now()
    job = Job(**fields, state=Job.State.SUCCEEDED, price_credits=0, reused_from=source, queued_at=now,
              started_at=now, encoding_at=now, finished_at=now, progress_step=source.steps,
              gpu_seconds=0, cost_usd=Decimal("0"), queue_seconds=0)
    for field in ("video", "poster", "spritesheet", "input_image"):
        if getattr(source, field):
            with getattr(source, field).open("rb") as original:
                setattr(job, field, job_file_store(job.id, field, original))
    job.save()
    _notify(job, "video.succeeded")
    transaction.on_commit(lambda: events.publish(job.id, payloads.terminal_event(job)))
    return job


def job_dispatch(job: Job) -> None:
    """Wake a worker of the job's pool; a job that cannot be queued fails at once (and its
    credits return) rather than sitting in `queued` forever.

    The message names the pool, not the job: the worker that takes it claims the pool's
    best queued job at that moment (`job_claim_next`), which is how priorities and the
    no-starvation rule hold whatever order the broker delivers in. One message per queued
    job, so no queued job is left without a worker's turn."""
    try:
        job_wake_pool(job.pool)
    except Exception as error:  # noqa: BLE001 - any broker error means the job was not queued
        logger.exception("Could not queue job %s", job.id)
        job_fail(job.id, reason="The job could not be queued; please try again.", detail=repr(error))
        return
    events.publish(job.id, {"type": "queued"})


def job_wake_pool(pool: str) -> None:
    """One wake-up message for a worker of `pool` (raises if the broker is unreachable)."""
    current_app.send_task(RUN_NEXT_TASK, args=[pool], queue=pools.queue_name(pool))


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
            promoted.append(job_transition(job_id, Job.State.QUEUED, **_queue_fields(account.plan.queue_priority)))
        for job in promoted:
            transaction.on_commit(lambda job=job: job_dispatch(job))
    return promoted


def _job_end(job_id, to: str, *, expect: dict | None = None, claimed: Job | None = None, **changes) -> Job:
    """Enter a terminal state and settle the job's credits in the same transaction: captured
    on success, released otherwise. Then a throttled job of the team may take the slot.
    `claimed`: the attempt the caller runs (and `expect` holds it to), whose start is known,
    so its cost is written with the new state rather than after it."""
    copy = None
    if claimed is not None and claimed.started_at is not None:
        changes["finished_at"] = timezone.now()
        changes.update(_cost_fields(claimed, end=changes["finished_at"]))
        # A copy: should the transaction roll back (and be retried), the caller's job is untouched.
        copy = copy_module.copy(claimed)
    with transaction.atomic():
        job = job_transition(job_id, to, expect=expect, job=copy, **changes)
        if copy is None:
            _record_cost(job)
        _notify(job, f"video.{to}")
        if to == Job.State.SUCCEEDED:
            ledger.credits_capture(job.id)
        else:
            ledger.credits_release(job.id)
        transaction.on_commit(lambda: events.publish(job.id, payloads.terminal_event(job)))
        transaction.on_commit(lambda: jobs_promote_throttled(job.team_id))
    return job


def job_transition(job_id, to: str, *, expect: dict | None = None, job: Job | None = None, **changes) -> Job:
    """Move a job to state `to` if the state machine allows it from its current state.

    The conditional UPDATE is also the claim: of two workers handed the same job, only
    one changes the row; the other gets InvalidTransition. `expect` adds conditions, e.g.
    the attempt a worker claimed, so a worker presumed lost (and replaced) that wakes up
    again cannot move a job it no longer owns.

    The changed row comes back from the UPDATE itself (one statement, not two); with `job`,
    the caller's own copy of the row (a worker's claimed job, which `expect` holds to),
    plain changes are applied to that copy instead of read back.
    """
    allowed_from = [state for state, targets in Job.TRANSITIONS.items() if to in targets]
    stamp = Job.STATE_TIMESTAMPS.get(to)
    if stamp:
        changes.setdefault(stamp, timezone.now())
    rows = Job.objects.filter(pk=job_id, state__in=allowed_from, **(expect or {}))
    if job is not None and not any(hasattr(value, "resolve_expression") for value in changes.values()):
        updated = [job] if rows.update(state=to, **changes) == 1 else []
        for name, value in ({"state": Job.State(to).value, **changes} if updated else {}).items():
            setattr(job, name, value)
    else:
        updated = update_returning(rows, state=to, **changes)
    if len(updated) != 1:
        current = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        raise InvalidTransition(f"Job {job_id} cannot go from '{current}' to '{Job.State(to).value}'.")
    return updated[0]


def _cost_fields(job: Job, *, end) -> dict:
    """Queue wait, GPU-seconds (from claim to end: the GPU is this job's all along) and
    their price at the pool's rate, for a job that started."""
    pool = pools.get_pool(job.pool)
    gpu_seconds = (end - job.started_at).total_seconds()
    return {
        "queue_seconds": (job.started_at - (job.queued_at or job.created_at)).total_seconds(),
        "gpu_seconds": gpu_seconds,
        "cost_usd": Decimal(str(round(gpu_seconds * pool.price_per_gpu_hour / 3600, 6))) if pool else None,
    }


def _record_cost(job: Job) -> None:
    """The cost fields of an ended job; cancelled-while-queued jobs cost nothing."""
    if job.started_at is None:
        return
    for name, value in _cost_fields(job, end=job.finished_at or timezone.now()).items():
        setattr(job, name, value)
    job.save(update_fields=["queue_seconds", "gpu_seconds", "cost_usd"])


def job_start(job_id, *, worker: str) -> Job:
    with transaction.atomic():
        job = _job_started(job_id, worker=worker)
    events.publish(job.id, {"type": "started"})
    return job


def _job_started(job_id, *, worker: str) -> Job:
    job = job_transition(job_id, Job.State.RUNNING, worker=worker, attempts=F("attempts") + 1, progress_step=0)
    _notify(job, "video.started")
    return job


def job_claim_next(pool: str, *, worker: str, likely_empty: bool = False) -> Job | None:
    """Claim the pool's next queued job for `worker`.

    Between priority tiers the dispatch key decides, as it always has: the pool's smallest
    key says which tier (plan priority) has the next turn. Within that tier teams take
    turns, round robin: the team whose last job in this pool started longest ago (or
    never) goes first, with its own smallest key. Fairness only reorders jobs inside a
    tier, so no job of another tier waits longer for it. A team that queued 200 jobs
    delays another team's first job by at most the claims already under way: about one
    job per worker of the pool. A job handed back by a lost worker goes first: it had its
    turn already.

    Claims of one pool take turns (a PostgreSQL advisory lock held to commit: each claim
    sees whom the one before it served); SKIP LOCKED passes over a job being cancelled.
    bench/fleet.py replays a day of traffic through this same function."""
    queued = Job.objects.filter(pool=pool, state=Job.State.QUEUED)
    # `likely_empty` (a worker asking again after a job): an empty queue, the usual answer
    # then, costs one read and no lock (a job queued meanwhile has its own wake-up on the
    # way), not a locked transaction while the finisher stores the job just done.
    if likely_empty and not queued.exists():
        return None
    with transaction.atomic():
        _claims_serialised(pool)
        # The queue's head (its tier), and whether anything else waits: a job alone in the
        # queue needs no turn taking (the usual case when the pool keeps up).
        head = list(queued.order_by(F("dispatch_key").asc(nulls_last=True), "created_at").values_list("pk", "priority")[:2])
        if not head:
            return None
        alone = len(head) == 1
        for candidates in [queued.filter(pk=head[0][0])] if alone else _in_turn(queued.filter(priority=head[0][1]), pool):
            job_id = (
                candidates.select_for_update(skip_locked=True)
                .order_by(F("dispatch_key").asc(nulls_last=True), "created_at")
                .values_list("pk", flat=True)
                .first()
            )
            if job_id is not None:
                job = _job_started(job_id, worker=worker)
                break
        else:
            return None
    events.publish(job.id, {"type": "started"})
    return job


def _claims_serialised(pool: str) -> None:
    # A claim takes milliseconds and a job seconds to minutes, so one claim at a time per
    # pool costs nothing. SQLite (make run) serialises writers by itself.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"framecast.claim:{pool}"])


def _in_turn(in_tier, pool: str):
    """The tier's queued jobs as groups, in the order their turn comes: first jobs handed
    back by a lost or interrupted worker (they had their turn: a retry keeps its place),
    then each team's jobs, in the order of `selectors.teams_in_turn`."""
    yield in_tier.filter(attempts__gt=0)
    for team_id in teams_in_turn(in_tier, pool):
        yield in_tier.filter(team_id=team_id)


def owned_by(job: Job) -> dict:
    """The condition that the job is still the attempt this worker claimed."""
    return {"attempts": job.attempts, "worker": job.worker}


def job_report_step(job: Job, *, step: int, eta_seconds: float | None, store: bool = True) -> None:
    """Tell the job's watchers a step is done; with `store`, also the job row, so that a page
    reloaded mid-job resumes at the right step (the worker stores quick steps less often)."""
    if store:
        Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, **owned_by(job)).update(progress_step=step)
    events.publish(
        job.id,
        {
            "type": "step",
            "i": step,
            "n": job.steps,
            "eta_seconds": None if eta_seconds is None else round(eta_seconds, 1),
        },
    )


def job_report_preview(job: Job, *, step: int, image: str) -> None:
    """A small picture of the frames being denoised (a data: URL); live only, not stored."""
    events.publish(job.id, {"type": "preview", "i": step, "image": image})


def job_start_encoding(job: Job, *, inference_seconds: float, load_seconds: float | None = None) -> Job:
    job = job_transition(
        job.pk, Job.State.ENCODING, expect=owned_by(job), job=job, inference_seconds=inference_seconds,
        load_seconds=load_seconds,
    )
    events.publish(job.id, {"type": "encoding"})
    return job


def job_succeed(
    job: Job, *, video: bytes, poster: bytes, encode_seconds: float, spritesheet: bytes | None = None,
    retry_seconds: float = 0,
) -> Job:
    """Store the files (under this attempt's names: a retried store replaces them), then
    mark the job succeeded (retrying that for up to `retry_seconds` while the database is
    away) and remove what earlier attempts left. If the job was cancelled or handed to
    another attempt meanwhile, this attempt's files are removed again."""
    files = {"video": video, "poster": poster, "spritesheet": spritesheet}
    names = {
        field: job_file_store(job.pk, field, data, attempt=job.attempts) for field, data in files.items() if data is not None
    }
    try:
        done = retrying_while_database_unavailable(
            lambda: _job_end(
                job.pk, Job.State.SUCCEEDED, expect=owned_by(job), claimed=job, encode_seconds=encode_seconds, **names
            ),
            seconds=retry_seconds, what=f"storing job {job.pk}",
        )
    except InvalidTransition:
        current = Job.objects.filter(pk=job.pk).first()
        if current is not None and current.state == Job.State.SUCCEEDED and current.video.name == names.get("video"):
            done = current  # a try whose commit went unanswered did succeed
        else:
            storage = Job._meta.get_field("video").storage
            for name in set(names.values()) - (referenced_names(current) if current else set()):
                storage.delete(name)
            raise
    job_files_prune(done)
    return done


def job_cancel(job_id) -> Job:
    """Cancel a job that has not ended: its credits return at once. A running job's worker
    notices at its next denoising step (`job_is_cancelled`) and stops. Raises
    InvalidTransition for a job that has already ended."""
    return _job_end(job_id, Job.State.CANCELLED)


def job_is_cancelled(job_id) -> bool:
    return Job.objects.filter(pk=job_id, state=Job.State.CANCELLED).exists()


def job_fail(job_id, *, reason: str, detail: str = "", expect: dict | None = None) -> Job | None:
    """Fail a job that has not ended yet. Returns None if it already had (or, with
    `expect`, if it is no longer the attempt the caller owned)."""
    try:
        return _job_end(job_id, Job.State.FAILED, expect=expect, error_message=reason[:500], error_detail=detail)
    except InvalidTransition:
        return None


def job_requeue_or_fail(job_id, *, reason: str, expect: dict | None = None) -> Job | None:
    """A job whose worker was lost: back to the queue for another attempt, or failed (its
    credits released) once it has had FRAMECAST_MAX_ATTEMPTS (preempted attempts not
    counted). It keeps its place in the queue (its dispatch key) rather than going behind
    every job that arrived since."""
    job = Job.objects.filter(pk=job_id, **(expect or {})).first()
    if job is None or job.state not in (Job.State.RUNNING, Job.State.ENCODING):
        return None
    if job.attempts - job.preemptions >= settings.FRAMECAST_MAX_ATTEMPTS:
        return job_fail(
            job.pk,
            reason=f"The video could not be generated: {reason} ({job.attempts} attempts). No credits were used.",
            expect=owned_by(job),
        )
    with transaction.atomic():
        try:
            job = job_transition(
                job.pk, Job.State.QUEUED, expect=owned_by(job), worker="", progress_step=0, queued_at=timezone.now()
            )
        except InvalidTransition:
            return None
        transaction.on_commit(lambda: job_dispatch(job))
    return job


def job_requeue_preempted(job_id, *, expect: dict, gpu_seconds: float) -> Job | None:
    """A running job whose worker is shutting down (gpu_workers.shutdown) and stopped it at
    a step boundary: back to the queue, never failed for it. Its attempt stays recorded and
    is counted as a preemption (not against FRAMECAST_MAX_ATTEMPTS); its dispatch key (its
    place in the queue) and its credit hold are kept as they are; the GPU time it wasted is
    added to `preempted_gpu_seconds`, ours, not the customer's: the final attempt's
    gpu_seconds and the price held are what the job is charged. None if the job is no longer
    this attempt's (cancelled meanwhile, or presumed lost and requeued)."""
    with transaction.atomic():
        try:
            job = job_transition(
                job_id, Job.State.QUEUED, expect=expect, worker="", progress_step=0, queued_at=timezone.now(),
                preemptions=F("preemptions") + 1, preempted_gpu_seconds=F("preempted_gpu_seconds") + gpu_seconds,
            )
        except InvalidTransition:
            return None
        transaction.on_commit(lambda: job_dispatch(job))
    return job


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


def job_delete(job: Job) -> None:
    """Delete an ended job and, once that commits, its files (generation.signals). Raises
    InvalidTransition for a job still waiting or running (cancel it first)."""
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, state__in=Job.TERMINAL).exists():
            raise InvalidTransition(f"Job {job.pk} has not ended.")
        job.delete()


def jobs_delete_files(jobs) -> None:
    """Delete every file ever stored for `jobs` (every attempt's, not only the ones they
    reference) once the surrounding transaction commits (a rolled back deletion must not
    lose videos)."""
    stored = [(job.pk, referenced_names(job)) for job in jobs]
    transaction.on_commit(lambda: job_files_delete(stored))
