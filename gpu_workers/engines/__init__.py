"""Inference engines: what turns a claimed job into frames, per pool (generation/pools.toml).

`diffusers` (the default) runs the pipeline in the worker's own process
(gpu_workers.runner._denoise). `openai_videos` hands the job to a server of the OpenAI
Videos API beside the worker (SGLang-Diffusion, or another Framecast's /openai/v1) and
follows it there (openai_videos.py). Whatever made the frames, the worker then marks,
encodes, signs, stores and ends the job the same way (runner._finish), so nothing above
the worker changes: jobs, prices, credits, progress, cancellation, watermark, C2PA.

No torch here: the web tier loads this package (gpu_workers.apps) for the start-up check.
"""

from __future__ import annotations

import threading

from generation import pools


class EngineError(Exception):
    """The engine could not make the job's video. `user_message` is what the user reads;
    `detail` (what the engine answered) is kept for operators in the job's error_detail."""

    def __init__(self, user_message: str, detail: str):
        super().__init__(detail)
        self.user_message = user_message
        self.detail = detail

    def __repr__(self) -> str:  # the job's error_detail (gpu_workers.runner): readable, unquoted
        return f"{type(self).__name__}: {self.detail}"


class EngineFailed(EngineError):
    """The engine answered with an error, a failed job, something that is not a video, or
    did not finish in time: the job fails (its credits are released)."""


class EngineUnavailable(EngineError):
    """The engine could not be reached or said it is overloaded (502/503/504/429): not the
    job's fault, so it goes back to the queue under the usual attempt rules."""


_engines: dict[str, object] = {}
_lock = threading.Lock()


def engine_for(pool_name: str):
    """The engine client of an `openai_videos` pool (one per pool and process, keeping its
    HTTP connections warm); None for a pool whose jobs run in this process."""
    pool = pools.get_pool(pool_name)
    if pool is None or pool.engine.in_process:
        return None
    with _lock:
        engine = _engines.get(pool_name)
        if engine is None or engine.pool != pool:
            from .openai_videos import OpenAIVideosEngine

            engine = _engines[pool_name] = OpenAIVideosEngine(pool)
        return engine


def refuse_to_start_misconfigured(sender=None, **kwargs) -> None:
    """celery's worker_init: a worker consuming an engine pool whose API key variable is
    unset, or a pool of several GPUs per worker without its ranks (gpu_workers.multigpu),
    stops at once with the reason, rather than failing every job it claims."""
    from django.conf import settings

    from .. import multigpu

    consumed = set(sender.app.amqp.queues.consume_from or {}) if sender is not None else set()
    serving = [pool for pool in pools.all_pools() if pool.queue in consumed]
    problems = pools.engine_key_problems({pool.name for pool in serving}) + multigpu.check_worker_start(serving)
    if problems:
        prefix = settings.FRAMECAST_QUEUE_PREFIX
        raise SystemExit("Framecast worker refused to start" + (f" (queue prefix {prefix!r})" if prefix else "")
                         + ":\n  " + "\n  ".join(problems))
