"""Loads a diffusers text-to-video pipeline once per worker process and runs it.

Worker-side only: this module imports torch at import time, so the web tier
must never import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from diffusers import DiffusionPipeline
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.utils import logging as diffusers_logging

from . import adapters as adapter_cache
from . import embeddings
from .adapters import Adapter

# Loading bars are noise in worker logs; progress is reported per job instead.
diffusers_logging.disable_progress_bar()
transformers.utils.logging.disable_progress_bar()

# Wan zero-pads prompt embeddings to this length and its cross-attention has no
# mask, so the length changes the output: it must be the same at every call
# (and the same the model was trained with; real Wan 2.1 uses 512). On the tiny
# model 512 instead of 64 costs ~40 ms per 9x64x64x8-step clip with guidance
# (0.095 s vs 0.054 s on 2 CPU cores): not worth a second code path.
DEFAULT_MAX_SEQUENCE_LENGTH = 512

_PipelineKey = tuple[str, str, str]
# Warm pipelines, least recently used first. A worker serving several models keeps as many
# as fit in FRAMECAST_WARM_MODELS_MB (their weights' bytes); 0 means no limit.
_PIPELINES: OrderedDict[_PipelineKey, DiffusionPipeline] = OrderedDict()
_LOAD_LOCK = threading.Lock()
# Base models read from disk since the process started: switching adapters or tasks on a
# warm model reads none (tests count this).
_counts = {"base_loads": 0}


def base_model_loads() -> int:
    return _counts["base_loads"]


def _budget_bytes() -> int:
    return int(float(os.environ.get("FRAMECAST_WARM_MODELS_MB", "0")) * 2**20)


def pipeline_bytes(pipe: Any) -> int:
    """The bytes of a pipeline's weights (parameters and buffers of its torch modules)."""
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            tensors = [*component.parameters(), *component.buffers()]
            total += sum(tensor.numel() * tensor.element_size() for tensor in tensors)
    return total


def _evict_beyond_budget(keep: _PipelineKey) -> None:
    budget = _budget_bytes()
    if not budget:
        return
    while sum(pipeline_bytes(pipe) for pipe in _PIPELINES.values()) > budget:
        oldest = next(iter(_PIPELINES))
        if oldest == keep:
            break  # the model in use stays, even alone over the budget
        evicted = _PIPELINES.pop(oldest)
        embeddings.forget(evicted.text_encoder)
        for key in [key for key in _VARIANTS if key[0] == id(evicted)]:
            del _VARIANTS[key]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

OnStep = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


class GenerationCancelled(Exception):
    """Raised by generate_frames when should_stop() asked the run to stop."""

    def __init__(self, steps_done: int, steps_total: int) -> None:
        super().__init__(f"generation cancelled after {steps_done} of {steps_total} steps")
        self.steps_done = steps_done
        self.steps_total = steps_total


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


DtypeSpec = torch.dtype | dict[str, torch.dtype]


def _default_dtype(device: str) -> DtypeSpec:
    if device.startswith("cuda"):
        # bf16 for speed/memory, but the Wan VAE is run in float32 as the
        # diffusers Wan examples do (its decode is sensitive to low precision).
        return {"default": torch.bfloat16, "vae": torch.float32}
    return torch.float32  # CPU bf16 matmuls are slow and imprecise


def _dtype_key(dtype: DtypeSpec) -> str:
    if isinstance(dtype, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(dtype.items()))
    return str(dtype)


def load_pipeline(
    path: str | Path, device: str | None = None, dtype: DtypeSpec | None = None
) -> DiffusionPipeline:
    """Loads the pipeline saved at the local directory `path` (cached per process).

    device defaults to CUDA when available, else CPU; dtype defaults to bf16
    (VAE float32) on CUDA and float32 on CPU. Never touches the network.
    """
    path = Path(path).resolve()
    device = device or default_device()
    dtype = dtype if dtype is not None else _default_dtype(device)
    key = (str(path), device, _dtype_key(dtype))
    with _LOAD_LOCK:  # a second thread must wait, not load a second copy
        pipe = _PIPELINES.get(key)
        if pipe is None:
            if not (path / "model_index.json").is_file():
                raise FileNotFoundError(f"no diffusers pipeline at {path} (model_index.json missing)")
            pipe = DiffusionPipeline.from_pretrained(path, local_files_only=True, dtype=dtype)
            _counts["base_loads"] += 1
            pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            _PIPELINES[key] = pipe
        _PIPELINES.move_to_end(key)
        _evict_beyond_budget(keep=key)
    return pipe


def dtype_for(spec: Any, device: str) -> DtypeSpec:
    """The dtypes a registry entry (generation.catalog.ModelSpec) asks for on this device."""
    if not device.startswith("cuda"):
        return torch.float32  # CPU bf16 matmuls are slow and imprecise
    main, vae = getattr(torch, spec.dtype), getattr(torch, spec.vae_dtype)
    return main if main == vae else {"default": main, "vae": vae}


def load_model(spec: Any, device: str | None = None) -> DiffusionPipeline:
    """The registry entry's pipeline, warm if this process already loaded it. Raises
    FileNotFoundError when the weights are missing and TypeError when the folder holds a
    different pipeline class than the registry declares."""
    path = spec.weights_path()
    if path is None or not (Path(path) / "model_index.json").is_file():
        raise FileNotFoundError(f"no diffusers pipeline for {spec.name} at {path} (model_index.json missing)")
    declared = json.loads((Path(path) / "model_index.json").read_text()).get("_class_name")
    if declared != spec.pipeline:
        raise TypeError(f"{spec.name}: {path} holds a {declared}, but the registry declares {spec.pipeline}")
    device = device or default_device()
    return load_pipeline(path, device=device, dtype=dtype_for(spec, device))


_VARIANTS: dict[tuple[int, str], DiffusionPipeline] = {}


def variant(pipe: DiffusionPipeline, class_name: str) -> DiffusionPipeline:
    """The same weights behind another task's pipeline class: video to video
    (WanVideoToVideoPipeline) or image to video (WanImageToVideoPipeline, conditioning the
    first frame's latents as Wan 2.2 TI2V does, so no image encoder is needed). Built once
    per loaded pipeline; no weights are copied."""
    key = (id(pipe), class_name)
    with _LOAD_LOCK:
        built = _VARIANTS.get(key)
        if built is None:
            import diffusers

            cls = getattr(diffusers, class_name)
            parts = {name: part for name, part in pipe.components.items() if name in cls._get_signature_keys(cls)[0]}
            if class_name == "WanImageToVideoPipeline":
                parts = {**parts, "image_encoder": None, "image_processor": None, "expand_timesteps": True}
            built = cls(**{name: part for name, part in parts.items() if name != "transformer_2" or part is not None})
            built.set_progress_bar_config(disable=True)
            _VARIANTS[key] = built
    return built


def warm_pipelines() -> list[str]:
    """Paths of the pipelines this process keeps loaded, least recently used first."""
    return [key[0] for key in _PIPELINES]


def clear_pipeline_cache() -> None:
    """Forgets every loaded pipeline (tests, or to free GPU memory)."""
    with _LOAD_LOCK:
        for pipe in _PIPELINES.values():
            embeddings.forget(pipe.text_encoder)
        _PIPELINES.clear()
        _VARIANTS.clear()


def _spatial_multiple(pipe: Any) -> int:
    patch = pipe.transformer.config.patch_size
    return int(pipe.vae_scale_factor_spatial * max(patch[1], patch[2]))


def validate_request(pipe: Any, *, width: int, height: int, num_frames: int, steps: int) -> None:
    """Raises ValueError for sizes the pipeline would otherwise silently round."""
    multiple = _spatial_multiple(pipe)
    temporal = int(pipe.vae_scale_factor_temporal)
    if width < multiple or height < multiple or width % multiple or height % multiple:
        raise ValueError(f"width and height must be positive multiples of {multiple}, got {width}x{height}")
    if num_frames < 1 or (num_frames - 1) % temporal:
        raise ValueError(f"num_frames must be {temporal}k+1 (1, {temporal + 1}, ...), got {num_frames}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


@contextlib.contextmanager
def _step_cache(pipe: Any, threshold: float | None) -> Iterator[None]:
    """diffusers' First-Block Cache on the transformer for one call only (the pipeline is
    shared by every job the worker runs); None: no cache."""
    if threshold is None:
        yield
        return
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    try:
        yield
    finally:
        pipe.transformer.disable_cache()


@contextlib.contextmanager
def _flow_shift(pipe: Any, shift: float | None) -> Iterator[None]:
    """The scheduler's flow shift set to `shift` for one call (a distillation adapter is
    trained with its own): a configured copy replaces the shared scheduler, and the
    original is put back afterwards. None: the model's own."""
    if shift is None:
        yield
        return
    original = pipe.scheduler
    config = original.config
    # FlowMatchEulerDiscreteScheduler calls it `shift`; UniPC (real Wan checkpoints) `flow_shift`.
    name = "flow_shift" if "flow_shift" in config else "shift" if "shift" in config else None
    if name is None:
        raise ValueError(f"{type(original).__name__} has no flow shift to set")
    pipe.scheduler = type(original).from_config(config, **{name: shift})
    try:
        yield
    finally:
        pipe.scheduler = original


def _prompt_inputs(
    pipe: Any, *, prompt: str, negative_prompt: str, guidance: float, max_sequence_length: int, cached: bool
) -> dict[str, Any]:
    """The prompt arguments of the pipeline call: cached embeddings, or the texts."""
    if not cached:
        return {"prompt": prompt, "negative_prompt": negative_prompt}
    inputs = {"prompt_embeds": embeddings.embedding(pipe, prompt, max_sequence_length=max_sequence_length)}
    if guidance > 1.0:  # Wan's condition for classifier-free guidance: only then is the negative used
        inputs["negative_prompt_embeds"] = embeddings.embedding(
            pipe, negative_prompt or "", max_sequence_length=max_sequence_length
        )
    return inputs


def _pil(frame: np.ndarray, width: int, height: int):
    from PIL import Image

    picture = Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
    return picture if picture.size == (width, height) else picture.resize((width, height), Image.Resampling.LANCZOS)


def to_uint8(video: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.rint(video * 255.0), 0, 255).astype(np.uint8)


def generate_frames(
    pipe: Any,
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    width: int,
    height: int,
    num_frames: int,
    steps: int,
    guidance: float,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    on_latents: Callable[[int, int, Any], None] | None = None,
    step_cache_threshold: float | None = None,
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH,
    image: np.ndarray | None = None,
    video: np.ndarray | None = None,
    strength: float | None = None,
    adapters: Sequence[Adapter] = (),
    flow_shift: float | None = None,
    embedding_cache: bool = True,
) -> np.ndarray:
    """Generates a clip; returns uint8 frames of shape (num_frames, height, width, 3).

    on_step(i, n) is called after each denoising step, i = 1..n. If should_stop()
    returns True (checked after each on_step), GenerationCancelled is raised at once.

    With `image` (uint8 RGB, any size) the first frame is conditioned on it: pass an
    image-to-video `pipe` (see variant). With `video` (uint8 frames, num_frames of them)
    those frames are re-generated, `strength` of the way from them: pass a video-to-video
    `pipe`. Both are resized to width × height.

    `adapters` (LoRAs) are active for this call only, loaded onto the pipeline's transformer
    if they are not already there (see gpu_workers.adapters); `flow_shift` replaces the
    scheduler's shift for this call (a distillation adapter's). With `embedding_cache` the
    prompt embeddings come from gpu_workers.embeddings (the same frames, bit for bit).
    """
    validate_request(pipe, width=width, height=height, num_frames=num_frames, steps=steps)

    def callback(p: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        done = step_index + 1
        if on_step is not None:
            on_step(done, steps)
        if on_latents is not None:
            on_latents(done, steps, callback_kwargs["latents"])
        if should_stop is not None and should_stop():
            # Raised from inside the loop rather than setting `p._interrupt`: diffusers
            # would still VAE-decode the partial latents, seconds of GPU time on real models.
            raise GenerationCancelled(done, steps)
        return callback_kwargs

    # A generator on the pipeline's own device, so the same seed gives the same
    # noise on every run on that kind of device (CPU and CUDA streams differ).
    generator = torch.Generator(device=pipe.device).manual_seed(seed)
    inputs: dict[str, Any] = {"num_frames": num_frames}
    if image is not None:
        inputs["image"] = _pil(image, width, height)
    if video is not None:
        if len(video) != num_frames:
            raise ValueError(f"the source video has {len(video)} frames, the request {num_frames}")
        # The video-to-video pipeline takes its frame count from the video.
        if strength is None or not 0 < strength <= 1:
            raise ValueError(f"strength must be in (0, 1] for video to video, got {strength}")
        inputs = {"video": [_pil(frame, width, height) for frame in video], "strength": strength}
    with (
        adapter_cache.applied(pipe, adapters),
        _flow_shift(pipe, flow_shift),
        _step_cache(pipe, step_cache_threshold),
    ):
        texts = _prompt_inputs(
            pipe, prompt=prompt, negative_prompt=negative_prompt, guidance=guidance,
            max_sequence_length=max_sequence_length, cached=embedding_cache,
        )
        result = pipe(
            **inputs,
            **texts,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generator,
            output_type="np",
            callback_on_step_end=callback,
            # The latents only when a preview wants them; otherwise skip the lookup per step.
            callback_on_step_end_tensor_inputs=["latents"] if on_latents is not None else [],
            max_sequence_length=max_sequence_length,
        )
    frames = to_uint8(np.asarray(result.frames[0]))
    expected = (num_frames, height, width, 3)
    if frames.shape != expected:  # guards the contract the encoder and the DB rely on
        raise RuntimeError(f"pipeline returned frames of shape {frames.shape}, expected {expected}")
    return frames
