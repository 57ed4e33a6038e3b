"""One generation, start to finish, on a GPU worker: claim → denoise → encode → store.

Each step reports through generation.services, which owns the job's state and its
events; this module owns only the work.
"""

import logging
import time

from django.conf import settings

from generation import catalog, services
from generation.models import Job

from . import encode, heartbeat, pipeline, preview

logger = logging.getLogger(__name__)

# First-Block Cache threshold of the fast mode: 0.1 took Wan 1.3B from 222 s to 139 s in
# published measurements; above 0.2 the video blurs (../shared/FACTS.md).
FAST_MODE_CACHE_THRESHOLD = 0.1


def run_next(pool: str, *, worker: str) -> Job | None:
    """Claim and run the pool's next queued job; None if the queue was empty."""
    job = services.job_claim_next(pool, worker=worker)
    if job is None:
        return None
    run_claimed(job)
    return job


def run_claimed(job: Job) -> None:
    job_id = job.id
    heartbeat.job_started(job_id)
    try:
        _generate(job)
    except pipeline.GenerationCancelled as stop:
        logger.info("Job %s cancelled: stopped after step %d of %d", job_id, stop.steps_done, stop.steps_total)
    except services.InvalidTransition:
        # Cancelled while encoding, or presumed lost and requeued: another attempt owns it.
        logger.info("Job %s is no longer this worker's; its result is dropped", job_id)
    except Exception as error:  # noqa: BLE001 - any failure must end the job, never leave it running
        logger.exception("Job %s failed", job_id)
        services.job_fail(job_id, reason=_user_reason(error), detail=repr(error), expect=services.owned_by(job))
    finally:
        heartbeat.job_finished()


def _generate(job: Job) -> None:
    spec = catalog.get_model(job.model_name)
    if spec is None:
        raise ModelUnavailable(f"Model {job.model_name!r} is not configured on this worker.")
    weights = spec.weights_path()
    if not (weights / "model_index.json").exists():
        raise ModelUnavailable(
            f"Weights for {job.model_name} are missing at {weights}; run `python manage.py prepare_models`."
        )
    pipe = pipeline.load_pipeline(weights)
    latent_rgb = preview.fit_latent_rgb(pipe)  # once per loaded pipeline
    limiter = preview.PreviewLimiter(min_interval=settings.FRAMECAST_PREVIEW_MIN_SECONDS)

    started = time.monotonic()

    def on_step(i: int, n: int) -> None:
        elapsed = time.monotonic() - started
        services.job_report_step(job, step=i, eta_seconds=elapsed / i * (n - i))

    def on_latents(i: int, n: int, latents) -> None:
        if i == n or not limiter.due():
            return  # the finished video follows the last step anyway
        made = time.monotonic()
        image = preview.preview_data_url(preview.preview_rgb(latents, *latent_rgb))
        limiter.record(time.monotonic() - made)
        services.job_report_preview(job, step=i, image=image)

    frames = pipeline.generate_frames(
        pipe,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seed=job.seed,
        width=job.width,
        height=job.height,
        num_frames=job.num_frames,
        steps=job.steps,
        guidance=job.guidance,
        on_step=on_step,
        on_latents=on_latents,
        step_cache_threshold=FAST_MODE_CACHE_THRESHOLD if job.speed == Job.Speed.FAST else None,
        # One indexed read per step: steps of real models take seconds.
        should_stop=lambda: services.job_is_cancelled(job.id),
    )
    inference_seconds = time.monotonic() - started
    logger.info(
        "Job %s denoised in %.2f s; previews took %.1f%% of it",
        job.id, inference_seconds, 100 * limiter.spent / max(inference_seconds, 1e-9),
    )
    job = services.job_start_encoding(job, inference_seconds=inference_seconds)

    encode_started = time.monotonic()
    video = encode.encode_mp4(frames, fps=job.fps)
    poster = encode.poster_jpeg(frames)
    services.job_succeed(job, video=video, poster=poster, encode_seconds=time.monotonic() - encode_started)


class ModelUnavailable(Exception):
    pass


def _user_reason(error: Exception) -> str:
    if isinstance(error, ModelUnavailable):
        return "This model is not available right now."
    return "The video could not be generated because of an internal error. Please try again."
