"""One generation, start to finish, on a GPU worker: claim → denoise → encode → store.

Each step reports through generation.services, which owns the job's state and its
events; this module owns only the work.

Denoising needs the GPU; encoding and storing need only the CPU and the disk. A worker
given a `Finisher` hands each denoised clip to it and goes straight on to its next job, so
the GPU does not sit idle while the previous video is encoded (gpu_workers.tasks does
this; called without one, as in tests and tools, a job is finished before returning). Its
FRAMECAST_FINISHER_THREADS threads finish that many clips at once, for turbo speeds whose
clips denoise faster than one thread encodes them.
"""

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from core import request_id
from core.outages import DATABASE_UNAVAILABLE, database_unavailable, retrying_while_database_unavailable
from generation import catalog, services
from generation.models import Job
from generation.params import JobParams
from safety import provenance

from . import adapters, embeddings, encode, engines, heartbeat, multigpu, pipeline, preview, shutdown

logger = logging.getLogger(__name__)

# First-Block Cache threshold of the fast mode: 0.1 took Wan 1.3B from 222 s to 139 s in
# published measurements; above 0.2 the video blurs (../shared/FACTS.md).
FAST_MODE_CACHE_THRESHOLD = 0.1


class Finisher:
    """Encodes and stores denoised clips on `threads` background threads (default
    FRAMECAST_FINISHER_THREADS). At most `threads` clips are in its hands: a worker that
    denoises faster than they are finished is held back rather than piling up frames in
    memory. Each clip is finished once, by one thread; clips may be stored out of order
    (each job's end is fenced by its own owner, services.owned_by)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads if threads is not None else finisher_threads()
        if self.threads < 1:
            raise ValueError(f"a finisher needs at least one thread, got {self.threads}")
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="framecast-finish")
        self._pending: list[Future] = []
        self._lock = threading.RLock()  # drain() from a handler on a thread inside submit() must not deadlock

    def submit(self, work: Callable[[], None], *, job_id=None) -> None:
        with self._lock:
            self._wait_until(self.threads - 1)  # a thread is free for this clip
            heartbeat.finishing_started(job_id)  # before the caller's job_finished: never unnamed
            # In a copy of the caller's context: its log lines keep the job's request id.
            self._pending.append(
                self._executor.submit(contextvars.copy_context().run, _in_own_connection, work, job_id)
            )

    def drain(self) -> None:
        """Waits until every clip in hand is stored. Never raises: a clip's failure is its
        job's (the work ends it), and must not become the next job's."""
        with self._lock:
            self._wait_until(0)

    def in_flight(self) -> int:
        return sum(not future.done() for future in list(self._pending))

    def _wait_until(self, at_most: int) -> None:
        while True:
            for future in [f for f in self._pending if f.done()]:
                self._pending.remove(future)
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - logged; the next clip starts clean
                    logger.exception("Finishing a clip failed outside its job")
            if len(self._pending) <= at_most:
                return
            wait(self._pending, return_when=FIRST_COMPLETED)


def finisher_threads() -> int:
    """FRAMECAST_FINISHER_THREADS as a number: "auto" is one thread per AUTO_CORES_PER_FINISHER
    cores of this host, at least 1 and at most AUTO_MAX_FINISHER_THREADS (bench/gpu.py
    --finish-only: how many a turbo clip needs)."""
    value = settings.FRAMECAST_FINISHER_THREADS
    if value == "auto":
        return max(1, min(AUTO_MAX_FINISHER_THREADS, (os.cpu_count() or 1) // AUTO_CORES_PER_FINISHER))
    return int(value)


# One clip's finishing (watermark, then x264, which spreads over ~1.5 threads per core)
# keeps about two cores busy; beyond 4 in flight the frames held (a 720p clip of 81
# frames is 224 MB, more with its marked copy) cost more than they save.
AUTO_CORES_PER_FINISHER = 2
AUTO_MAX_FINISHER_THREADS = 4


def _in_own_connection(work: Callable[[], None], job_id) -> None:
    close_old_connections()
    try:
        work()
    finally:
        heartbeat.finishing_ended(job_id)
        close_old_connections()


_finisher: Finisher | None = None
_finisher_lock = threading.Lock()


def background_finisher() -> Finisher:
    """This process's finisher (one per worker process, FRAMECAST_FINISHER_THREADS threads)."""
    global _finisher
    with _finisher_lock:
        if _finisher is None:
            _finisher = Finisher()
        return _finisher


def drain_background_finisher() -> None:
    """At worker shutdown: store every clip being finished before the process exits."""
    if _finisher is not None:
        _finisher.drain()


def run_queue(pool: str, *, worker: str, finisher: Finisher | None = None, seconds: float | None = None) -> int:
    """Run the pool's queued jobs one after another, each claimed as the previous one is
    handed to the finisher, until the queue is empty, the worker is told to stop, or
    `seconds` (FRAMECAST_CLAIM_LOOP_SECONDS) have passed; returns how many ran.

    One wake-up message thus starts a worker on the whole backlog: when the broker loses
    its messages (a Redis restart without persistence), the reaper's first wake-up per
    worker puts the pool back at full speed, and jobs no longer wait on the broker between
    them. Each claim still takes the pool's best job (job_claim_next), so priorities hold;
    a wake-up left over finds the queue empty and costs one query."""
    seconds = settings.FRAMECAST_CLAIM_LOOP_SECONDS if seconds is None else seconds
    started, done = time.monotonic(), 0
    while not shutdown.requested():
        if run_next(pool, worker=worker, finisher=finisher, likely_empty=done > 0) is None:
            break
        done += 1
        if time.monotonic() - started >= seconds:
            break
    return done


def run_next(pool: str, *, worker: str, finisher: Finisher | None = None, likely_empty: bool = False) -> Job | None:
    """Claim and run the pool's next queued job; None if the queue was empty. While the
    database is away the claim is retried (FRAMECAST_DB_RETRY_SECONDS), then its error is
    raised: the caller must not count the wake-up as used (gpu_workers.tasks requeues it)."""
    job = retrying_while_database_unavailable(
        lambda: services.job_claim_next(pool, worker=worker, likely_empty=likely_empty),
        seconds=settings.FRAMECAST_DB_RETRY_SECONDS, what=f"claiming a job of pool {pool}", on_wait=_waiting_for_the_database,
    )
    heartbeat.trouble(None)
    if job is None:
        return None
    run_claimed(job, finisher=finisher)
    return job


def _waiting_for_the_database(error: Exception) -> None:
    heartbeat.trouble("the database is unreachable")  # not healthy meanwhile
    if shutdown.requested():
        raise error  # shutting down: hand the wake-up back now rather than wait


def run_claimed(job: Job, *, finisher: Finisher | None = None) -> None:
    request_id.bind_job(job.id)  # log lines name the job and the API request that made it
    # The heartbeat names the job until the finisher has it: a job running or encoding that
    # no beat names is one this worker abandoned, and the reaper requeues it.
    heartbeat.job_started(job.id)
    try:
        frames = None
        with _ending_the_job_on_error(job):
            engine = engines.engine_for(job.pool)  # None: diffusers, in this process
            job, frames = engine.run(job) if engine is not None else _denoise(job)
        if frames is None:
            return

        def finish() -> None:
            with _ending_the_job_on_error(job):
                _finish(job, frames)

        if finisher is None:
            finish()
        else:
            finisher.submit(finish, job_id=job.id)
    finally:
        heartbeat.job_finished()  # the GPU is free for the next job


@contextlib.contextmanager
def _ending_the_job_on_error(job: Job) -> Iterator[None]:
    """Whatever goes wrong, the job ends: it never stays running or encoding."""
    try:
        yield
    except Preempted as stop:
        logger.warning(
            "Job %s handed back to the queue: the worker is shutting down (stopped after step %d of %d, "
            "%.1f GPU-seconds discarded)", job.id, stop.steps_done, stop.steps_total, stop.gpu_seconds,
        )
        wasted = stop.gpu_seconds
        _settle(job, lambda: services.job_requeue_preempted(job.id, expect=services.owned_by(job), gpu_seconds=wasted))
    except pipeline.GenerationCancelled as stop:
        logger.info("Job %s cancelled: stopped after step %d of %d", job.id, stop.steps_done, stop.steps_total)
    except services.InvalidTransition:
        # Cancelled while encoding, or presumed lost and requeued: another attempt owns it.
        logger.info("Job %s is no longer this worker's; its result is dropped", job.id)
    except DATABASE_UNAVAILABLE as error:
        # Not the job's fault: back to the queue, keeping its place, once the database is.
        logger.warning("Job %s interrupted: the database is unreachable (%r)", job.id, error)
        _settle(job, lambda: services.job_requeue_or_fail(
            job.id, reason="the database was unreachable", expect=services.owned_by(job)))
    except engines.EngineUnavailable as error:
        # The pool's engine is down or overloaded: another attempt, within the attempt limit.
        logger.warning("Job %s: its engine is unavailable: %s", job.id, error.detail)
        _settle(job, lambda: services.job_requeue_or_fail(
            job.id, reason="the rendering engine was unavailable", expect=services.owned_by(job)))
    except Exception as error:  # noqa: BLE001 - any failure must end the job, never leave it running
        logger.exception("Job %s failed", job.id)
        reason, detail = _user_reason(error), repr(error)
        _settle(job, lambda: services.job_fail(job.id, reason=reason, detail=detail, expect=services.owned_by(job)))


def _settle(job: Job, end) -> None:
    """End the job, retrying while the database is away. If it stays away, the job is
    left to the reaper (no beat names it any more), never raised into the next job."""
    try:
        _while_the_database_is_away(end, what=f"ending job {job.id}")
        heartbeat.trouble(None)
    except Exception as error:  # noqa: BLE001 - see above
        logger.error("Job %s left for the reaper: %r", job.id, error, exc_info=not database_unavailable(error))


def _while_the_database_is_away(action, *, what: str):
    """action(), retried with backoff for up to FRAMECAST_DB_RETRY_SECONDS while the
    database is away; the worker withholds its heartbeat meanwhile."""

    def troubled(error: Exception) -> None:
        heartbeat.trouble("the database is unreachable")

    return retrying_while_database_unavailable(
        action, seconds=settings.FRAMECAST_DB_RETRY_SECONDS, what=what, on_wait=troubled
    )


def _denoise(job: Job):
    """Runs the diffusion; returns (the job now encoding, its uint8 frames)."""
    claimed = time.monotonic()
    spec = catalog.get_model(job.model_name)
    if spec is None:
        raise ModelUnavailable(f"Model {job.model_name!r} is not configured on this worker.")
    try:
        pipe = pipeline.load_model(spec)
    except FileNotFoundError as missing:
        raise ModelUnavailable(f"{missing}; run `python manage.py prepare_models`.") from missing
    latent_rgb = preview.fit_latent_rgb(pipe)  # once per loaded pipeline
    conditioning = _conditioning(job, spec)
    if conditioning:
        pipe = pipeline.variant(pipe, spec.remix_pipeline if "video" in conditioning else spec.image_pipeline)
    limiter = preview.PreviewLimiter(min_interval=settings.FRAMECAST_PREVIEW_MIN_SECONDS)
    job_adapters = _adapters(job, spec)
    turbo = job.speed == Job.Speed.TURBO
    cache_before = embeddings.counts()

    started = time.monotonic()
    progress = {"step": 0, "left": None}  # the last step done, and the seconds still to go

    writes = _ProgressWrites(lag_seconds=settings.FRAMECAST_PROGRESS_STORE_LAG_SECONDS)

    def on_step(i: int, n: int) -> None:
        now = time.monotonic()
        elapsed = now - started
        progress["step"], progress["left"] = i, elapsed / i * (n - i)
        store = i == n or writes.due(now, step_seconds=elapsed / i)
        services.job_report_step(job, step=i, eta_seconds=progress["left"], store=store)

    def should_stop() -> bool:
        # One indexed read per step: steps of real models take seconds.
        if services.job_is_cancelled(job.id):
            return True
        # Shutting down: go on only if the rest of the steps and the clip's finishing (as
        # long as this worker's last one took) end within the grace.
        if shutdown.requested() and not shutdown.finishes_in_time(progress["left"] + _last_finish_seconds[0]):
            raise Preempted(progress["step"], job.steps, gpu_seconds=time.monotonic() - claimed)
        return False

    def on_latents(i: int, n: int, latents) -> None:
        if i == n or not limiter.due():
            return  # the finished video follows the last step anyway
        made = time.monotonic()
        image = preview.preview_data_url(preview.preview_rgb(latents, *latent_rgb))
        limiter.record(time.monotonic() - made)
        services.job_report_preview(job, step=i, image=image)

    frames = multigpu.generate_frames(  # pipeline.generate_frames, on every rank of a multi-GPU worker
        spec,
        pipe,
        **JobParams.from_job(job).pipeline_args(),
        on_step=on_step,
        on_latents=on_latents,
        step_cache_threshold=FAST_MODE_CACHE_THRESHOLD if job.speed == Job.Speed.FAST else None,
        max_sequence_length=spec.max_sequence_length,
        should_stop=should_stop,
        adapters=job_adapters,
        # The turbo adapter runs with the scheduler's shift it was distilled with.
        flow_shift=spec.turbo.flow_shift if turbo else None,
        **conditioning,
    )
    inference_seconds = time.monotonic() - started
    cache = embeddings.counts()
    rate = embeddings.hit_rate(cache)
    logger.info(
        "Job %s loaded in %.2f s, denoised in %.2f s; previews took %.1f%% of it; prompt embeddings: %d of %d "
        "from the cache (hit rate %s since the worker started); adapters: %s",
        job.id, started - claimed, inference_seconds, 100 * limiter.spent / max(inference_seconds, 1e-9),
        cache["hits"] - cache_before["hits"],
        cache["hits"] + cache["misses"] - cache_before["hits"] - cache_before["misses"],
        "n/a" if rate is None else f"{100 * rate:.0f}%", ", ".join(a.name for a in job_adapters) or "none",
    )
    return services.job_start_encoding(job, inference_seconds=inference_seconds, load_seconds=started - claimed), frames


def _adapters(job: Job, spec) -> list[pipeline.Adapter]:
    """The LoRAs the job runs with: the turbo speed's distillation adapter, then the team's
    LoRAs in the order the job lists them (each fetched from the storage and verified)."""
    chosen = []
    if job.speed == Job.Speed.TURBO:
        file = spec.turbo.weights_file() if spec.turbo is not None else None
        if file is None or not file.is_file():
            raise AdapterGone(f"The turbo speed of {spec.name} is not available right now.")
        chosen.append(pipeline.Adapter(name="turbo", path=file, scale=spec.turbo.scale, label="turbo"))
    cache_dir = settings.FRAMECAST_LORA_CACHE_DIR or settings.FRAMECAST_MODELS_DIR / "lora-cache"
    for entry in job.loras or ():
        try:
            path = adapters.local_copy(entry["file"], entry["sha256"], cache_dir=cache_dir)
        except adapters.LoraFileGone as gone:
            raise AdapterGone(f"The LoRA '{entry['name']}' is no longer available.") from gone
        chosen.append(pipeline.Adapter(
            name=f"lora_{entry['sha256'][:12]}", path=path, scale=float(entry["scale"]), label=entry["name"],
        ))
    return chosen


def _conditioning(job: Job, spec) -> dict:
    """The remix's source frames or the reference image, as generate_frames takes them."""
    if job.strength is not None:  # a remix (its source link is cleared if the source is deleted)
        if not spec.remix_pipeline:
            raise ModelUnavailable(f"{spec.name} cannot remix videos.")
        source = Job.objects.filter(pk=job.remixed_from_id).first() if job.remixed_from_id else None
        if source is None or not source.video:
            raise SourceGone("The video being remixed was deleted before its remix started.")
        with source.video.open("rb") as file:
            return {"video": encode.decode_frames(file.read()), "strength": job.strength}
    if job.input_image:
        if not spec.image_pipeline:
            raise ModelUnavailable(f"{spec.name} does not take a reference image.")
        from PIL import Image

        with job.input_image.open("rb") as file:
            return {"image": np.asarray(Image.open(file).convert("RGB"))}
    return {}


# How long this process's last clip took from the end of denoising to stored: what a job
# still needs after its last step, when a shutdown asks whether it will end in time.
_last_finish_seconds = [0.0]


def _finish(job: Job, frames) -> None:
    """Encode the MP4, its poster and sprite sheet, store them, and end the job."""
    encode_started = time.monotonic()
    stages = _Stages()
    with stages("display"):
        shown = encode.upscale_for_display(frames)  # small outputs: k×k pixel blocks, at least 128 px
    # Invisible watermark, poster included; its identifier is recorded (once per job) first.
    with stages("watermark"):
        frames = _while_the_database_is_away(lambda: provenance.mark_job_frames(job, shown), what=f"marking job {job.id}")
    with stages("encode"):
        video = encode.encode_mp4(frames, fps=job.fps)
    with stages("c2pa"):
        video = provenance.sign_job_video(job, video)  # C2PA credentials, where configured
    with stages("poster"):
        poster = encode.poster_jpeg(frames)
    with stages("spritesheet"):
        spritesheet = encode.spritesheet_jpeg(frames)
    with stages("store"):  # the files, then the job's end (credits, cost, webhook) in one transaction
        services.job_succeed(
            job, video=video, poster=poster, spritesheet=spritesheet, encode_seconds=time.monotonic() - encode_started,
            retry_seconds=settings.FRAMECAST_DB_RETRY_SECONDS,
        )
    _last_finish_seconds[0] = time.monotonic() - encode_started
    # One line per job with the time of each finishing step (bench/overhead.py reads it).
    logger.info("Job %s finished in %.1f ms (%s)", job.id, 1000 * _last_finish_seconds[0], stages)
    heartbeat.trouble(None)


class _ProgressWrites:
    """Which steps' progress is written to the job row. Every step's event goes out live;
    the row (what a reloaded page resumes from) gets a step unless skipping it could leave
    the stored step behind the real one for `lag_seconds` or more: with quick steps (the tiny
    model's take milliseconds) one UPDATE per half second instead of one per step. The last
    step is always stored."""

    def __init__(self, lag_seconds: float) -> None:
        self.lag_seconds = lag_seconds
        self.behind_since: float | None = None  # when the row's step fell behind, if it has

    def due(self, now: float, *, step_seconds: float) -> bool:
        if self.behind_since is None:
            self.behind_since = now
        # Skipped, this step's write comes with the next one, about step_seconds from now.
        if now - self.behind_since + step_seconds < self.lag_seconds:
            return False
        self.behind_since = None
        return True


class _Stages:
    """Milliseconds spent in named steps: `with stages("encode"): ...`."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = 1000 * (time.perf_counter() - began)

    def __str__(self) -> str:
        return ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.ms.items())


class Preempted(pipeline.GenerationCancelled):
    """The worker is shutting down and the job would not end within the grace: it stopped
    at a step boundary, to go back to the queue (raised from should_stop, which
    generate_frames calls after each step)."""

    def __init__(self, steps_done: int, steps_total: int, *, gpu_seconds: float) -> None:
        super().__init__(steps_done, steps_total)
        self.gpu_seconds = gpu_seconds


class ModelUnavailable(Exception):
    pass


class SourceGone(Exception):
    pass


class AdapterGone(Exception):
    """A LoRA the job asks for cannot be had (its str is the user's reason)."""


def _user_reason(error: Exception) -> str:
    if isinstance(error, ModelUnavailable):
        return "This model is not available right now."
    if isinstance(error, SourceGone | AdapterGone):
        return str(error)
    if isinstance(error, adapters.AdapterUnusable):
        return f"The LoRA '{error.adapter.label or error.adapter.name}' could not be applied to this model."
    if isinstance(error, engines.EngineError):
        return error.user_message
    return "The video could not be generated because of an internal error. Please try again."
