"""A worker's warm-up, before it reports itself ready: load its pools' models and run one
small generation through each, then the finishing steps (display upscaling, watermark,
encode, C2PA, poster, sprite sheet) on its frames, and one progress event. Without it the first job of a process
paid for the torch import, the model load and every library's first call (measured: 6.0 s
for the first job's task against 0.9 s for the next one, 17 s on a loaded machine).

Nothing here touches a job or the database: a warm-up that fails is logged, and the worker
becomes ready all the same (its jobs then fail with their own clear reason, e.g. missing
weights)."""

import logging
import time
import uuid

from django.conf import settings
from django.utils import timezone

from generation import catalog, pools

from . import shutdown

logger = logging.getLogger(__name__)

WARM_UP_PROMPT = "a red circle moving right on a black background"


def models_to_warm(pool_names: list[str]) -> list:
    """The available models of the pools, the default model last (it stays the most
    recently used when the warm-models budget evicts the others)."""
    names: list[str] = []
    for pool in filter(None, (pools.get_pool(name) for name in pool_names)):
        names += [name for name in pool.models if name not in names]
    specs = [spec for spec in map(catalog.get_model, names) if spec is not None]
    return sorted(specs, key=lambda spec: spec.name == settings.FRAMECAST_DEFAULT_MODEL)


def warm_up(pool_names: list[str]) -> dict[str, float]:
    """Warm every available model of the pools; returns the seconds each took."""
    began = time.monotonic()
    from . import pipeline  # torch and diffusers: the first cost of a fresh process

    took = {"import": time.monotonic() - began}
    # A job's steps publish progress events: the channel layer's first connection and its
    # event loop thread are made here, to a group no one watches.
    from generation import events

    events.publish(uuid.uuid4(), {"type": "warm-up"})
    for spec in models_to_warm(pool_names):
        if shutdown.requested():
            break  # told to stop while warming: no job will come
        started = time.monotonic()
        try:
            pipe = pipeline.load_model(spec)
            _generate_and_finish(pipe, spec)
        except FileNotFoundError as missing:
            logger.warning("Not warming %s: %s", spec.name, missing)  # its jobs fail saying so
            continue
        except Exception:  # noqa: BLE001 - a failed warm-up must not keep the worker from starting
            logger.exception("Warm-up of %s failed", spec.name)
            continue
        took[spec.name] = time.monotonic() - started
    logger.info("Warmed up in %.2f s (%s)", time.monotonic() - began,
                ", ".join(f"{name} {seconds:.2f} s" for name, seconds in took.items()))
    return took


def _generate_and_finish(pipe, spec) -> None:
    """The smallest clip the model makes, through the same calls a job makes."""
    from safety import credentials, watermark

    from . import encode, pipeline, preview

    latent_rgb = preview.fit_latent_rgb(pipe)
    side = max(16, spec.size_multiple, spec.min_side)  # diffusers' Wan wants multiples of 16
    frames = pipeline.generate_frames(
        pipe, prompt=WARM_UP_PROMPT, negative_prompt="", seed=0, width=side, height=side,
        num_frames=int(pipe.vae_scale_factor_temporal) + 1, steps=2,
        guidance=float(spec.defaults.get("guidance", 4.5)),  # > 1: the negative prompt's pass too, as in jobs
        on_latents=lambda i, n, latents: preview.preview_data_url(preview.preview_rgb(latents, *latent_rgb)),
        max_sequence_length=spec.max_sequence_length,
    )
    shown = watermark.embed(encode.upscale_for_display(frames), watermark.new_mark_id())
    video = encode.encode_mp4(shown, fps=8)
    credentials.sign_mp4(video, model_name=spec.name, created_at=timezone.now(), title="warm-up.mp4")
    encode.poster_jpeg(shown)
    encode.spritesheet_jpeg(shown)
