"""The worker's prompt-embedding cache (gpu_workers.embeddings): a repeated prompt and the
empty negative prompt skip the text encoder, the frames are the same bit for bit, and the
cache stays within its byte budget. Its counters reach /metrics through the heartbeat row."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers/transformers are imported

import numpy as np
import pytest

from gpu_workers import embeddings
from gpu_workers import pipeline as gp

CLIP = dict(prompt="a red ball rolls", negative_prompt="", seed=5, width=64, height=64, num_frames=5, steps=3, guidance=5.0)


@pytest.fixture(scope="module")
def pipe(warm_tiny_pipeline):
    return warm_tiny_pipeline


@pytest.fixture(autouse=True)
def empty_cache():
    embeddings.clear()
    yield
    embeddings.clear()


class EncoderCalls:
    """Counts the text encoder's forward passes (a forward hook; the encoder runs as is)."""

    def __init__(self, pipe):
        self.n = 0
        self.handle = pipe.text_encoder.register_forward_hook(self.seen)

    def seen(self, module, inputs, output):
        self.n += 1


@pytest.fixture
def encoder_calls(pipe):
    calls = EncoderCalls(pipe)
    yield calls
    calls.handle.remove()


def delta(before: dict) -> tuple[int, int]:
    now = embeddings.counts()
    return now["hits"] - before["hits"], now["misses"] - before["misses"]


def test_frames_from_cached_embeddings_are_bit_identical_to_frames_without_the_cache(pipe):
    uncached = gp.generate_frames(pipe, **CLIP, embedding_cache=False)
    first = gp.generate_frames(pipe, **CLIP)  # misses: encoded, then stored
    second = gp.generate_frames(pipe, **CLIP)  # hits
    assert np.array_equal(first, uncached) and np.array_equal(second, uncached)
    with_negative = {**CLIP, "negative_prompt": "blurry, low quality"}
    assert np.array_equal(gp.generate_frames(pipe, **with_negative), gp.generate_frames(pipe, **with_negative, embedding_cache=False))


def test_a_repeated_prompt_and_the_empty_negative_prompt_skip_the_text_encoder(pipe, encoder_calls):
    before = embeddings.counts()
    gp.generate_frames(pipe, **CLIP)
    assert encoder_calls.n == 2 and delta(before) == (0, 2)  # the prompt and the empty negative
    gp.generate_frames(pipe, **{**CLIP, "prompt": "a green boat", "seed": 6})
    assert encoder_calls.n == 3 and delta(before) == (1, 3)  # only the new prompt was encoded
    gp.generate_frames(pipe, **{**CLIP, "seed": 7})
    assert encoder_calls.n == 3 and delta(before) == (3, 3)
    assert embeddings.hit_rate(dict(zip(("hits", "misses"), delta(before), strict=True))) == 0.5


def test_without_guidance_the_negative_prompt_is_not_encoded_at_all(pipe, encoder_calls):
    gp.generate_frames(pipe, **{**CLIP, "guidance": 1.0, "negative_prompt": "blurry"})
    assert encoder_calls.n == 1


def test_the_padding_length_is_part_of_the_key(pipe, encoder_calls):
    a = gp.generate_frames(pipe, **CLIP, max_sequence_length=512)
    b = gp.generate_frames(pipe, **CLIP, max_sequence_length=64)
    assert encoder_calls.n == 4
    assert not np.array_equal(a, b)  # Wan's cross-attention sees the padding
    assert np.array_equal(b, gp.generate_frames(pipe, **CLIP, max_sequence_length=64, embedding_cache=False))


def test_the_cache_keeps_within_its_byte_budget_least_recently_used_first(pipe, monkeypatch, encoder_calls):
    one = embeddings.embedding(pipe, "a", max_sequence_length=512)
    size = one.numel() * one.element_size()
    monkeypatch.setenv("FRAMECAST_EMBEDDING_CACHE_MB", str(2.5 * size / 2**20))  # room for two
    for text in ("b", "a", "c"):  # "b" is the least recently used when "c" comes
        embeddings.embedding(pipe, text, max_sequence_length=512)
    assert embeddings.cached_bytes() == 2 * size
    calls = encoder_calls.n
    embeddings.embedding(pipe, "a", max_sequence_length=512)
    embeddings.embedding(pipe, "c", max_sequence_length=512)
    assert encoder_calls.n == calls
    embeddings.embedding(pipe, "b", max_sequence_length=512)
    assert encoder_calls.n == calls + 1
    monkeypatch.setenv("FRAMECAST_EMBEDDING_CACHE_MB", "0")  # 0: no caching
    embeddings.clear()
    embeddings.embedding(pipe, "a", max_sequence_length=512)
    assert embeddings.cached_bytes() == 0


def test_an_evicted_pipeline_takes_its_embeddings_with_it(pipe, tmp_path):
    embeddings.embedding(pipe, "a red ball", max_sequence_length=512)
    assert embeddings.cached_bytes() > 0
    gp.clear_pipeline_cache()
    assert embeddings.cached_bytes() == 0


@pytest.mark.django_db
def test_the_counters_reach_metrics_through_the_workers_heartbeat_row(client, alice, tiny_model, monkeypatch):
    from django.utils import timezone

    from gpu_workers import heartbeat
    from gpu_workers.models import WorkerHeartbeat
    from gpu_workers.runner import run_next

    from .test_tenant_isolation import make_job

    monkeypatch.setattr(heartbeat.state, "hostname", "w1@gpu-a")
    monkeypatch.setattr(heartbeat.state, "pool", "cpu")
    now = timezone.now()
    monkeypatch.setattr(heartbeat.state, "started_at", now)
    WorkerHeartbeat.objects.create(hostname="w1@gpu-a", pool="cpu", device="cpu", started_at=now, last_seen_at=now)
    before = embeddings.counts()
    for seed in (1, 2):  # the same prompt twice: the second job's two lookups are hits
        make_job(alice, width=64, height=32, num_frames=5, steps=2, seed=seed)
        run_next("cpu", worker="test")
    heartbeat.beat()  # the heartbeat thread's next beat (not a write on the job's path)
    row = WorkerHeartbeat.objects.get(hostname="w1@gpu-a")
    assert (row.embedding_cache_hits - before["hits"], row.embedding_cache_misses - before["misses"]) == (2, 2)
    body = client.get("/metrics").content.decode()
    labels = 'device="cpu",pool="cpu",worker="w1@gpu-a"'
    assert f"framecast_worker_embedding_cache_hits_total{{{labels}}} {float(row.embedding_cache_hits)}" in body
    assert f"framecast_worker_embedding_cache_misses_total{{{labels}}} {float(row.embedding_cache_misses)}" in body
