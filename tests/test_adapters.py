"""LoRA adapters on the warm tiny pipeline (gpu_workers.adapters through generate_frames):
they change the frames while applied, never leak into the next call, are loaded once and
reused within a memory budget, and never make the worker reload the base model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers/transformers are imported

import numpy as np
import pytest

from gpu_workers import adapters
from gpu_workers import pipeline as gp

CLIP = dict(prompt="a red ball rolls", negative_prompt="", seed=5, width=64, height=64, num_frames=5, steps=4, guidance=5.0)


@pytest.fixture(scope="module")
def pipe(warm_tiny_pipeline):
    return warm_tiny_pipeline


@pytest.fixture(autouse=True)
def _no_adapters_left(pipe):
    yield
    adapters.forget_all(pipe)


@pytest.fixture(scope="module")
def lora_files(pipe, tmp_path_factory):
    """Three random LoRAs of the tiny transformer, of ranks 4, 2 and 4."""
    folder = tmp_path_factory.mktemp("loras")
    return [
        adapters.save_random_lora(pipe.transformer, folder / f"{name}.safetensors", rank=rank, seed=seed)
        for name, rank, seed in (("ink", 4, 1), ("chalk", 2, 2), ("neon", 4, 3))
    ]


def lora(lora_files, index: int, scale: float = 1.0) -> adapters.Adapter:
    path = lora_files[index]
    return adapters.Adapter(name=path.stem, path=path, scale=scale, label=path.stem)


def test_a_lora_changes_the_frames_and_a_plain_call_after_it_is_bit_identical(pipe, lora_files):
    plain = gp.generate_frames(pipe, **CLIP)
    styled = gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0)])
    assert not np.array_equal(styled, plain)
    assert np.abs(styled.astype(int) - plain).mean() > 1  # a visible change, not rounding
    assert np.array_equal(gp.generate_frames(pipe, **CLIP), plain)
    # The adapter stays loaded for the next job that wants it, and gives the same frames.
    assert adapters.loaded_adapters(pipe) == ["ink"]
    assert np.array_equal(gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0)]), styled)


def test_a_cancelled_lora_call_does_not_leak_into_the_next_one(pipe, lora_files):
    plain = gp.generate_frames(pipe, **CLIP)
    with pytest.raises(gp.GenerationCancelled):
        gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0)], should_stop=lambda: True)
    with pytest.raises(ValueError, match="num_frames"):  # fails before the pipeline runs
        gp.generate_frames(pipe, **{**CLIP, "num_frames": 6}, adapters=[lora(lora_files, 1)])
    assert np.array_equal(gp.generate_frames(pipe, **CLIP), plain)


def test_scales_and_combinations_are_applied_as_asked(pipe, lora_files):
    plain = gp.generate_frames(pipe, **CLIP)
    full = gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0)])
    half = gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0, 0.5)])
    assert np.array_equal(gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0, 0.0)]), plain)
    assert not np.array_equal(half, full) and not np.array_equal(half, plain)
    both = gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0), lora(lora_files, 1)])
    assert not np.array_equal(both, full)
    # The same LoRA twice at 0.25 is that LoRA at 0.5.
    twice = gp.generate_frames(pipe, **CLIP, adapters=[lora(lora_files, 0, 0.25), lora(lora_files, 0, 0.25)])
    assert np.array_equal(twice, half)


def test_switching_adapters_reuses_loaded_ones_and_never_reloads_the_base_model(pipe, lora_files):
    base_loads, adapter_loads = gp.base_model_loads(), adapters.adapter_loads()
    ink, chalk = lora(lora_files, 0), lora(lora_files, 1)
    first_ink = gp.generate_frames(pipe, **CLIP, adapters=[ink])
    gp.generate_frames(pipe, **CLIP, adapters=[chalk])
    gp.generate_frames(pipe, **CLIP)
    again_ink = gp.generate_frames(pipe, **CLIP, adapters=[ink])
    gp.generate_frames(pipe, **CLIP, adapters=[chalk, ink])
    assert adapters.adapter_loads() - adapter_loads == 2  # each file read once
    assert gp.base_model_loads() == base_loads
    assert gp.load_pipeline(pipe.name_or_path) is pipe and gp.base_model_loads() == base_loads
    assert np.array_equal(first_ink, again_ink)
    assert adapters.loaded_adapters(pipe) == ["chalk", "ink"]  # least recently used first


def test_adapters_beyond_the_memory_budget_are_evicted_least_recently_used_first(pipe, lora_files, monkeypatch):
    ink, chalk, neon = (lora(lora_files, index) for index in range(3))
    gp.generate_frames(pipe, **CLIP, adapters=[ink])
    one = adapters._loaded(pipe)["ink"]
    assert one > 0
    # Room for ink (rank 4) and chalk (rank 2), or for two of rank 4, not for all three.
    monkeypatch.setenv("FRAMECAST_ADAPTERS_MB", str(2.2 * one / 2**20))
    gp.generate_frames(pipe, **CLIP, adapters=[chalk])
    assert adapters.loaded_adapters(pipe) == ["ink", "chalk"]
    gp.generate_frames(pipe, **CLIP, adapters=[ink])  # ink is now the most recent
    before = adapters.adapter_loads()
    gp.generate_frames(pipe, **CLIP, adapters=[neon])
    assert adapters.loaded_adapters(pipe) == ["ink", "neon"]  # chalk went
    assert adapters.adapter_loads() == before + 1
    # A job's own adapters stay even when together they exceed the budget.
    gp.generate_frames(pipe, **CLIP, adapters=[chalk, neon, ink])
    assert sorted(adapters.loaded_adapters(pipe)) == ["chalk", "ink", "neon"]
    # Deleting adapters leaves exactly the base computation.
    plain = gp.generate_frames(pipe, **CLIP)
    adapters.forget_all(pipe)
    assert np.array_equal(gp.generate_frames(pipe, **CLIP), plain)


def test_adapters_apply_to_the_remix_variant_that_shares_the_transformer(pipe, lora_files):
    remix = gp.variant(pipe, "WanVideoToVideoPipeline")
    source = gp.generate_frames(pipe, **CLIP)
    args = {**CLIP, "video": source, "strength": 0.75, "prompt": "a blue ball"}
    plain = gp.generate_frames(remix, **args)
    styled = gp.generate_frames(remix, **args, adapters=[lora(lora_files, 0)])
    assert not np.array_equal(styled, plain)
    assert np.array_equal(gp.generate_frames(remix, **args), plain)
    # Loaded through the variant, the adapter is on the base pipeline's transformer too.
    assert adapters.loaded_adapters(pipe) == ["ink"]


def test_a_file_that_is_not_a_lora_of_this_model_is_refused_and_leaves_nothing_behind(pipe, tmp_path):
    from safetensors.torch import save_file
    import torch

    plain = gp.generate_frames(pipe, **CLIP)
    junk = tmp_path / "junk.safetensors"
    save_file({"transformer.nowhere.lora_A.weight": torch.ones(2, 3), "transformer.nowhere.lora_B.weight": torch.ones(3, 2)}, junk)
    with pytest.raises(adapters.AdapterUnusable):
        gp.generate_frames(pipe, **CLIP, adapters=[adapters.Adapter(name="junk", path=junk)])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(adapters.AdapterUnusable):
        gp.generate_frames(pipe, **CLIP, adapters=[adapters.Adapter(name="garbage", path=garbage)])
    assert adapters.loaded_adapters(pipe) == []
    assert np.array_equal(gp.generate_frames(pipe, **CLIP), plain)


def test_a_flow_shift_applies_to_one_call_and_the_scheduler_is_put_back(pipe):
    scheduler = pipe.scheduler
    plain = gp.generate_frames(pipe, **CLIP)
    shifted = gp.generate_frames(pipe, **CLIP, flow_shift=8.0)
    assert not np.array_equal(shifted, plain)
    assert pipe.scheduler is scheduler and scheduler.config.shift == 3.0
    assert np.array_equal(gp.generate_frames(pipe, **CLIP), plain)
    # The model's own shift given explicitly is the model's schedule.
    assert np.array_equal(gp.generate_frames(pipe, **CLIP, flow_shift=3.0), plain)
