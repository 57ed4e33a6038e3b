"""Prompt embeddings kept between jobs, so a repeated prompt (and the common empty
negative prompt) skips the text encoder: Wan's UMT5-XXL is the slowest part of a 4-step
job.

An LRU within FRAMECAST_EMBEDDING_CACHE_MB (the tensors' bytes; they stay on the device
that made them), keyed by the text encoder, the text, the padding length (Wan pads to
exactly max_sequence_length, and the length changes the output), and the dtype and device.
The embedding of a text is the same whichever other text it is encoded with (diffusers'
Wan pipelines encode the prompt and the negative prompt separately), so frames made from
cached embeddings are bit-identical to frames made without the cache (tested).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from typing import Any

import torch

DEFAULT_CACHE_MB = 256

_Key = tuple[str, str, int, str, str]
_entries: OrderedDict[_Key, Any] = OrderedDict()
_bytes = {"total": 0}
_counts = {"hits": 0, "misses": 0}
_lock = threading.Lock()


def _budget_bytes() -> int:
    return int(float(os.environ.get("FRAMECAST_EMBEDDING_CACHE_MB", DEFAULT_CACHE_MB)) * 2**20)


def _size(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size()


def _encoder_tag(text_encoder: Any) -> str:
    """A name for this text encoder object, unique in the process: a pipeline evicted and
    loaded again gets a new one, so its old embeddings are never served for it."""
    tag = getattr(text_encoder, "_framecast_embedding_tag", None)
    if tag is None:
        tag = uuid.uuid4().hex
        text_encoder._framecast_embedding_tag = tag
    return tag


def counts() -> dict[str, int]:
    """Lookups answered from the cache (hits) and by the text encoder (misses), since the
    process started."""
    with _lock:
        return dict(_counts)


def hit_rate(figures: dict[str, int] | None = None) -> float | None:
    figures = counts() if figures is None else figures
    lookups = figures["hits"] + figures["misses"]
    return figures["hits"] / lookups if lookups else None


def cached_bytes() -> int:
    return _bytes["total"]


def embedding(pipe: Any, text: str, *, max_sequence_length: int) -> Any:
    """The prompt embedding of `text` as `pipe` makes it (shape 1 × max_sequence_length ×
    the encoder's width), from the cache when it is there."""
    device = pipe._execution_device
    encoder = pipe.text_encoder
    key = (_encoder_tag(encoder), text, max_sequence_length, str(encoder.dtype), str(device))
    with _lock:
        found = _entries.get(key)
        if found is not None:
            _entries.move_to_end(key)
            _counts["hits"] += 1
            return found
        _counts["misses"] += 1
    # Without gradients, as the pipeline's own call encodes: with them the text encoder takes
    # other kernels on the CPU, and the embedding differs in its last bits.
    with torch.no_grad():
        made, _ = pipe.encode_prompt(
            prompt=text, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length, device=device
        )
    _store(key, made)
    return made


def _store(key: _Key, tensor: Any) -> None:
    size, budget = _size(tensor), _budget_bytes()
    if size > budget:
        return  # caching off (budget 0), or one embedding bigger than it all
    with _lock:
        if key in _entries:
            return
        _entries[key] = tensor
        _bytes["total"] += size
        while _bytes["total"] > budget:
            _, oldest = _entries.popitem(last=False)
            _bytes["total"] -= _size(oldest)


def forget(text_encoder: Any) -> None:
    """Drops the embeddings this text encoder made (its pipeline was evicted)."""
    tag = getattr(text_encoder, "_framecast_embedding_tag", None)
    if tag is None:
        return
    with _lock:
        for key in [key for key in _entries if key[0] == tag]:
            _bytes["total"] -= _size(_entries.pop(key))


def clear() -> None:
    """Forgets every embedding (the counters stay: they count since the process started)."""
    with _lock:
        _entries.clear()
        _bytes["total"] = 0
