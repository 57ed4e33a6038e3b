"""Judges a toy model directly (no platform): generates clips for captions and seeds, reads
them back with the judge, and scores the agreement. Used by the training run's pilot
checks and by bench/toy_model.py; the platform-level test is tests/test_toy_model.py.
"""

from __future__ import annotations

import numpy as np
import torch

from gpu_workers import pipeline as runtime

from . import judge, model as toy, world

# How the registry entry (generation/models.toml) runs the model by default.
STEPS = 25
GUIDANCE = 8.0


def seen_sample(count: int) -> list[world.Scene]:
    """`count` seen scenes spread over every colour, shape, motion and background."""
    scenes = world.seen_scenes()
    return [scenes[(i * 37) % len(scenes)] for i in range(count)]


def held_out_sample(count: int) -> list[world.Scene]:
    scenes = world.held_out_scenes()
    return [scenes[(i * 7) % len(scenes)] for i in range(count)]


def generate(pipe, scene: world.Scene, seed: int, *, steps: int = STEPS, guidance: float = GUIDANCE,
             adapters=(), flow_shift: float | None = None) -> np.ndarray:
    """The clip as the worker makes it: exactly `adapters` active (none: the base model,
    whatever LoRA the pipeline holds), the scheduler's shift `flow_shift` for this call."""
    return runtime.generate_frames(
        pipe,
        prompt=scene.caption,
        negative_prompt="",
        seed=seed,
        width=world.NATIVE_SIZE,
        height=world.NATIVE_SIZE,
        num_frames=world.NATIVE_FRAMES,
        steps=steps,
        guidance=guidance,
        max_sequence_length=toy.MAX_SEQUENCE_LENGTH,
        adapters=adapters,
        flow_shift=flow_shift,
    )


@torch.no_grad()
def generate_as_is(pipe, scene: world.Scene, seed: int, *, steps: int = STEPS, guidance: float = GUIDANCE) -> np.ndarray:
    """The clip from the pipeline as it stands, with whatever LoRA it has enabled (the
    training run's in-memory student); the same call the worker's generate_frames makes."""
    generator = torch.Generator(device=pipe.device).manual_seed(seed)
    result = pipe(
        prompt=scene.caption, negative_prompt="", height=world.NATIVE_SIZE, width=world.NATIVE_SIZE,
        num_frames=world.NATIVE_FRAMES, num_inference_steps=steps, guidance_scale=guidance, generator=generator,
        output_type="np", max_sequence_length=toy.MAX_SEQUENCE_LENGTH,
    )
    return runtime.to_uint8(np.asarray(result.frames[0]))


def score_model(pipe, scenes: list[world.Scene], seeds: list[int], **kwargs) -> judge.Scores:
    scores = judge.Scores()
    for scene in scenes:
        for seed in seeds:
            scores.add(judge.judge(generate(pipe, scene, seed, **kwargs)), scene)
    return scores


@torch.no_grad()
def score_autoencoder(vae, count: int = 64, seed: int = 123) -> judge.Scores:
    """How well the autoencoder alone keeps what the judge reads (an upper bound for the
    whole model): reconstruct random 9-frame clips and judge them."""
    videos, _, scenes = world.sample_clips(world.seen_scenes(), count, seed=seed)
    scores = judge.Scores()
    for start in range(0, count, 16):
        x = torch.from_numpy(videos[start : start + 16]).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1)
        y = toy.decode_unclamped(vae, toy.encode_mean(vae, x)).clamp(-1, 1)
        frames = ((y + 1) * 127.5).round().byte().permute(0, 2, 3, 4, 1).numpy()
        for clip, scene in zip(frames, scenes[start : start + 16]):
            scores.add(judge.judge(clip), scene)
    return scores
