"""LoRA adapters on a warm pipeline: the turbo speed's distillation adapter and team LoRAs.

An adapter is loaded once onto the base model already in memory (diffusers' PEFT
integration wraps the targeted Linear layers; the base weights are never touched or
reloaded) and kept while it fits in FRAMECAST_ADAPTERS_MB, least recently used first out.
Each job says which adapters it runs with; `applied` switches to exactly those for the call
and leaves every adapter disabled afterwards, exceptions and cancellations included, so a
plain job after a LoRA job computes exactly what the base model computes (PEFT's disabled
path calls the base layer alone: bit-identical frames on the CPU, tested).

Team LoRA files live in Django's default storage (the media storage job files use, S3
where configured); `local_copy` keeps a verified copy on this worker's disk, named by its
SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_ADAPTERS_MB = 2048
DEFAULT_LORA_DISK_CACHE_MB = 10240


@dataclass(frozen=True)
class Adapter:
    """A LoRA to apply: `name` identifies it on the pipeline (the same name is the same
    weights), `path` is a local safetensors file in diffusers' LoRA format, `scale` its
    weight, `label` what users call it (for error messages)."""

    name: str
    path: Path
    scale: float = 1.0
    label: str = ""


class AdapterUnusable(Exception):
    """The adapter's file could not be loaded onto this model (not a LoRA of it)."""

    def __init__(self, adapter: Adapter, why: str) -> None:
        super().__init__(f"adapter {adapter.name} ({adapter.path}): {why}")
        self.adapter = adapter


# Adapter files read from disk onto a pipeline since the process started: switching to an
# adapter already loaded reads nothing (tests count this).
_counts = {"loads": 0}


def adapter_loads() -> int:
    return _counts["loads"]


def _budget_bytes() -> int:
    return int(float(os.environ.get("FRAMECAST_ADAPTERS_MB", DEFAULT_ADAPTERS_MB)) * 2**20)


def _transformers(pipe: Any) -> list[Any]:
    """The denoisers adapters go on: Wan 2.2's two experts both take them."""
    return [part for part in (pipe.transformer, getattr(pipe, "transformer_2", None)) if part is not None]


def _loaded(pipe: Any) -> OrderedDict[str, int]:
    """The adapters on this pipeline's transformer (name → bytes), least recently used
    first. Kept on the transformer itself: the video-to-video and image-to-video variants
    share it, and the record goes when the pipeline is evicted."""
    transformer = pipe.transformer
    record = getattr(transformer, "_framecast_adapters", None)
    if record is None:
        record = OrderedDict()
        transformer._framecast_adapters = record
    return record


def loaded_adapters(pipe: Any) -> list[str]:
    """Names of the adapters loaded on the pipeline, least recently used first."""
    return list(_loaded(pipe))


def _adapter_bytes(pipe: Any, name: str) -> int:
    marker = f".{name}."
    return sum(
        tensor.numel() * tensor.element_size()
        for transformer in _transformers(pipe)
        for key, tensor in transformer.named_parameters()
        if marker in key
    )


def _load(pipe: Any, adapter: Adapter, loaded: OrderedDict[str, int]) -> None:
    if adapter.name in loaded:
        loaded.move_to_end(adapter.name)
        return
    path = Path(adapter.path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file missing: {path}")
    try:
        with warnings.catch_warnings():
            # PEFT warns that a second adapter makes "multiple adapters in the model": intended.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter.name)
            if getattr(pipe, "transformer_2", None) is not None:
                pipe.load_lora_weights(
                    str(path.parent), weight_name=path.name, adapter_name=adapter.name, load_into_transformer_2=True
                )
    except Exception as error:
        _delete(pipe, adapter.name)  # nothing half-loaded stays
        raise AdapterUnusable(adapter, f"{type(error).__name__}: {error}") from error
    _counts["loads"] += 1
    if adapter.name not in (getattr(pipe.transformer, "peft_config", None) or {}):
        # diffusers loads nothing (and only warns) when no key names a layer of the model.
        raise AdapterUnusable(adapter, "none of its weights matches a layer of this model")
    loaded[adapter.name] = _adapter_bytes(pipe, adapter.name)
    logger.info("Loaded adapter %s (%.1f MB) from %s", adapter.name, loaded[adapter.name] / 2**20, path)


def _delete(pipe: Any, name: str) -> None:
    for transformer in _transformers(pipe):
        if name in (getattr(transformer, "peft_config", None) or {}):
            transformer.delete_adapters(name)
    _loaded(pipe).pop(name, None)


def _evict_beyond_budget(pipe: Any, keep: set[str]) -> None:
    loaded = _loaded(pipe)
    budget = _budget_bytes()
    while sum(loaded.values()) > budget:
        oldest = next((name for name in loaded if name not in keep), None)
        if oldest is None:
            break  # the job's own adapters stay, even alone over the budget
        logger.info("Evicting adapter %s (%.1f MB) to stay within %.1f MB", oldest, loaded[oldest] / 2**20, budget / 2**20)
        _delete(pipe, oldest)


def _weights(adapters: Sequence[Adapter]) -> dict[str, float]:
    """Scales by adapter name; the same LoRA given twice adds up (its effect is linear)."""
    weights: dict[str, float] = {}
    for adapter in adapters:
        weights[adapter.name] = weights.get(adapter.name, 0.0) + float(adapter.scale)
    return weights


def _disable(pipe: Any) -> None:
    for transformer in _transformers(pipe):
        if getattr(transformer, "peft_config", None):
            transformer.disable_lora()


@contextlib.contextmanager
def applied(pipe: Any, adapters: Sequence[Adapter]) -> Iterator[None]:
    """The pipeline with exactly `adapters` active (none: the base model) for one call."""
    try:
        if adapters:
            loaded = _loaded(pipe)
            for adapter in adapters:
                _load(pipe, adapter, loaded)
            weights = _weights(adapters)
            _evict_beyond_budget(pipe, keep=set(weights))
            for transformer in _transformers(pipe):
                transformer.enable_lora()
                transformer.set_adapters(list(weights), list(weights.values()))
        else:
            _disable(pipe)
        yield
    finally:
        _disable(pipe)  # the next job starts from the base model, whatever happened


def forget_all(pipe: Any) -> None:
    """Removes every adapter from the pipeline (tests, tools)."""
    for name in list(_loaded(pipe)):
        _delete(pipe, name)


# --- Team LoRA files: a verified local copy of a file in the default storage -------------


class LoraFileGone(Exception):
    """The stored LoRA file is missing, or its bytes are not the ones recorded."""


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_copy(storage_name: str, sha256: str, *, cache_dir: Path, storage=None) -> Path:
    """The local path of the LoRA stored as `storage_name` whose SHA-256 is `sha256`.

    The storage is asked every time whether the file still exists (a deleted LoRA is not
    applied any more, even from this worker's copy); its bytes are downloaded only when
    no verified copy is here. The copy is written beside its final name, checked against
    the digest and renamed into place, so a half-written or wrong file is never used.
    Raises LoraFileGone when the file is gone or its digest differs."""
    if storage is None:
        from django.core.files.storage import default_storage as storage
    if not storage.exists(storage_name):
        raise LoraFileGone(f"{storage_name} is not in the storage any more")
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{sha256}.safetensors"
    if target.is_file():
        os.utime(target)  # recently used: pruned last
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{sha256[:12]}-", suffix=".part", dir=cache_dir)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, storage.open(storage_name, "rb") as source:
            for block in iter(lambda: source.read(2**20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise LoraFileGone(f"{storage_name} has SHA-256 {digest.hexdigest()}, not the recorded {sha256}")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    _prune(cache_dir, keep=target)
    return target


def _prune(cache_dir: Path, *, keep: Path) -> None:
    """Deletes the least recently used copies beyond FRAMECAST_LORA_DISK_CACHE_MB."""
    budget = float(os.environ.get("FRAMECAST_LORA_DISK_CACHE_MB", DEFAULT_LORA_DISK_CACHE_MB)) * 2**20
    files = sorted(cache_dir.glob("*.safetensors"), key=lambda path: path.stat().st_mtime)
    total = sum(path.stat().st_size for path in files)
    for path in files:
        if total <= budget:
            break
        if path != keep:
            total -= path.stat().st_size
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# --- Random LoRAs (tests and benchmarks) ---------------------------------------------------

LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2")


def save_random_lora(transformer: Any, path: Path, *, rank: int, seed: int = 0, strength: float = 0.5) -> Path:
    """Writes a random LoRA of `rank` for `transformer` (a WanTransformer3DModel) on its
    attention and feed-forward layers, in diffusers' format (WanPipeline.save_lora_weights),
    to the file `path`. Both factors are random (a trained LoRA's B is not zero), so it
    changes the output; `strength` sets the size of the change."""
    import torch
    from diffusers import WanPipeline

    generator = torch.Generator().manual_seed(seed)
    layers: dict[str, torch.Tensor] = {}
    for name, module in transformer.named_modules():
        module = getattr(module, "base_layer", module)  # a layer that already carries adapters
        if isinstance(module, torch.nn.Linear) and name.startswith("blocks.") and name.endswith(LORA_TARGETS):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) * strength / rank**0.5
            layers[f"{name}.lora_A.weight"] = down.to(module.weight.dtype)
            layers[f"{name}.lora_B.weight"] = up.to(module.weight.dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    WanPipeline.save_lora_weights(path.parent, transformer_lora_layers=layers, weight_name=path.name)
    return path
