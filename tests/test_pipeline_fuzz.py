"""What validation accepts, the worker's pipeline runs: a seeded fuzz of the tiny model over
the space the request form and the remix rules let through (sizes, frames, steps, guidance,
speed, a reference image, a remix's strength), kept small so it takes seconds.

It found two requests that were accepted, held credits and then failed on the GPU: a remix
whose strength × steps is under one step (diffusers' reshape error), and a remix of a
fast-mode video (the First-Block Cache needs a cache context WanVideoToVideoPipeline never
opens). Both are now settled at submission (generation/inputs.py: remix_params)."""

import io
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from core.errors import Refusal
from generation.forms import JobForm
from generation.inputs import reference_image_png, remix_params
from generation.models import Job

CASES = 40


def _request(rng: random.Random) -> dict:
    return {
        "prompt": "a red ball moving left",
        "model": "framecast-tiny",
        "seed": rng.randrange(2**32),
        "width": rng.choice([32, 48]),
        "height": rng.choice([32, 48]),
        "num_frames": rng.choice([1, 5, 9]),
        "steps": rng.choice([1, 2, 3]),
        "guidance": rng.choice([0.0, 1.0, 4.5, 20.0]),
        "speed": rng.choice(["standard", "fast"]),
    }


def _png(rng: random.Random) -> bytes:
    size = (rng.randint(1, 80), rng.randint(1, 80))
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(rng.randrange(99)).integers(0, 255, (*size, 3), np.uint8)).save(out, "PNG")
    return out.getvalue()


def _source(params) -> Job:
    """A finished video of that shape, as remix_params sees its source."""
    return Job(prompt="source", negative_prompt="", model_name=params.model_name, seed=1, width=params.width,
               height=params.height, num_frames=params.num_frames, fps=params.fps, steps=params.steps,
               guidance=params.guidance, speed=params.speed, state=Job.State.SUCCEEDED, video="videos/source.mp4")


def _conditioning(pipe, params, rng):
    """The pipeline and inputs the worker would use (gpu_workers.runner._conditioning)."""
    from gpu_workers import encode, pipeline

    if params.remix_of is not None:
        # The stored source is the displayed size (at least 128 px), decoded by the worker.
        frames = np.random.default_rng(1).integers(0, 255, (params.num_frames, params.height, params.width, 3), np.uint8)
        video = encode.upscale_for_display(frames)
        return pipeline.variant(pipe, "WanVideoToVideoPipeline"), {"video": video, "strength": params.strength}
    if params.input_image:
        image = np.asarray(Image.open(io.BytesIO(params.input_image)).convert("RGB"))
        return pipeline.variant(pipe, "WanImageToVideoPipeline"), {"image": image}
    return pipe, {}


def test_every_request_that_validation_accepts_runs_on_the_tiny_model(tiny_model):
    from dataclasses import replace

    from gpu_workers import pipeline
    from gpu_workers.runner import FAST_MODE_CACHE_THRESHOLD

    pipe = pipeline.load_pipeline(tiny_model)
    rng = random.Random(21)
    outcomes = Counter()
    for _ in range(CASES):
        form = JobForm(data=_request(rng))
        assert form.is_valid(), form.errors  # the draws stay inside the form's space
        params = form.params()
        kind = rng.choice(["text", "image", "remix"])
        try:
            if kind == "remix":
                strength = rng.choice([0.1, 0.3, 0.5, rng.random() or 1.0, 1.0])
                params = remix_params(_source(params), prompt="a blue ball", seed=params.seed, strength=strength)
            elif kind == "image":
                params = replace(params, input_image=reference_image_png(_png(rng), model_name=params.model_name))
        except Refusal as refusal:
            assert kind == "remix" and refusal.field == "strength" and refusal.status == 400, refusal.message
            outcomes["refused"] += 1
            continue
        runs_on, conditioning = _conditioning(pipe, params, rng)
        frames = pipeline.generate_frames(
            runs_on, **params.pipeline_args(),
            # A short prompt padding (the worker uses the model's) changes the words' effect, not the shapes.
            max_sequence_length=64,
            step_cache_threshold=FAST_MODE_CACHE_THRESHOLD if params.speed == Job.Speed.FAST else None,
            **conditioning,
        )
        assert frames.shape == (params.num_frames, params.height, params.width, 3)
        outcomes[kind] += 1
    # Every kind was run, and the rule refused some remixes (the draw includes 1 step at 0.5).
    assert set(outcomes) == {"text", "image", "remix", "refused"}, outcomes
    print(dict(outcomes))


@pytest.mark.parametrize("steps, strength, ok", [(1, 0.5, False), (1, 1.0, True), (3, 0.33, False), (3, 0.34, True),
                                                 (49, 0.02, False), (49, 0.03, True), (10, 0.1, True)])
def test_a_remix_needs_one_denoising_step_after_strength(steps, strength, ok):
    from generation.services import JobParams

    source = _source(JobParams(prompt="x", negative_prompt="", model_name="framecast-tiny", seed=1, width=32,
                               height=32, num_frames=5, fps=8, steps=steps, guidance=5.0))
    if ok:
        assert remix_params(source, prompt="a boat", strength=strength).strength == strength
    else:
        with pytest.raises(Refusal) as refused:
            remix_params(source, prompt="a boat", strength=strength)
        assert refused.value.field == "strength" and "at least" in refused.value.message
