"""The toy model's turbo speed: a LoRA distilled from framecast-toy (gpu_workers/toy/distill.py)
that generates in 3 steps without guidance, and still follows its prompt.

The direct tests load the shipped adapter onto the toy pipeline as the worker does; the
platform test sends `speed: "turbo"` through the public API to a real worker and judges the
MP4 it stores. Its figures are printed (`-s`) and kept in the adapter's card
(gpu_workers/weights/framecast-toy/turbo/README.md).
"""

import json
import tomllib

import numpy as np
import pytest

from gpu_workers.toy import judge, world
from gpu_workers.toy.evaluate import held_out_sample, seen_sample

from .conftest import REPO
from .test_toy_model import judged_through_the_platform

TOY = "framecast-toy"
TURBO_DIR = REPO / "gpu_workers" / "weights" / TOY / "turbo"
SEEN = seen_sample(24)
HELD_OUT = held_out_sample(12)
SEEDS = (1, 2)


def _trained() -> dict:
    return json.loads((TURBO_DIR / "training.json").read_text())


@pytest.fixture(scope="module")
def toy_pipelines():
    """Two fresh fp32 copies of the shipped toy pipeline (not the worker's cache): one plain,
    one with the turbo adapter loaded as the worker loads it."""
    from gpu_workers.toy import distill

    plain, turbo = distill.load_teacher(), distill.load_teacher()
    distill.load_turbo(turbo, TURBO_DIR)
    return plain, turbo


def _frames(pipe, scene: world.Scene, seed: int, *, steps: int, guidance: float, shift: float) -> np.ndarray:
    """The pipeline as it stands (its LoRA enabled or not), at this scheduler shift."""
    from gpu_workers.toy import distill
    from gpu_workers.toy import evaluate

    distill.set_shift(pipe, shift)
    try:
        return evaluate.generate_as_is(pipe, scene, seed, steps=steps, guidance=guidance)
    finally:
        distill.set_shift(pipe, 3.0)


def _served(pipe, scene: world.Scene, seed: int) -> np.ndarray:
    """The clip as the worker serves turbo: the shipped adapter applied to a plain pipeline
    for this call only, at the registry's steps, guidance and shift."""
    from gpu_workers.toy import distill
    from gpu_workers.toy import evaluate

    config = _trained()["config"]
    return evaluate.generate(pipe, scene, seed, steps=config["steps"], guidance=1.0,
                             adapters=[distill.turbo_adapter(TURBO_DIR)], flow_shift=config["flow_shift"])


def test_the_adapter_file_holds_only_lora_weights_for_the_transformer():
    from safetensors import safe_open

    from gpu_workers.toy import distill

    path = TURBO_DIR / distill.WEIGHT_NAME
    assert path.stat().st_size < 4 * 2**20, "the turbo LoRA should stay a few MB at most"
    with safe_open(path, framework="pt") as weights:
        keys = list(weights.keys())
        metadata = weights.metadata() or {}
    assert keys and all(key.startswith("transformer.") for key in keys), keys[:5]
    assert all(".lora_A." in key or ".lora_B." in key for key in keys), [k for k in keys if "lora_" not in k][:5]
    # Rank and alpha travel with the file (diffusers reads them back as the adapter's config).
    assert "lora_adapter_metadata" in metadata


def test_turbo_follows_the_prompt_in_at_most_4_steps_without_guidance(toy_pipelines):
    """A seen and a held-out caption, judged directly at the turbo settings of its card."""
    plain, _ = toy_pipelines
    config = _trained()["config"]
    assert config["steps"] <= 4
    for scene in (SEEN[0], SEEN[5], HELD_OUT[0]):
        verdict = judge.judge(_served(plain, scene, 1))
        agrees = verdict.agrees_with(scene)
        assert agrees["background"] and agrees["colour"] and agrees["motion"], (scene.caption, verdict)


def test_the_adapter_changes_the_frames_and_disabling_it_restores_the_base_model(toy_pipelines):
    plain, turbo = toy_pipelines
    scene = SEEN[3]
    base = _frames(plain, scene, 2, steps=4, guidance=1.0, shift=3.0)
    with_lora = _frames(turbo, scene, 2, steps=4, guidance=1.0, shift=3.0)
    assert np.abs(with_lora.astype(int) - base.astype(int)).mean() > 1.0
    turbo.disable_lora()
    try:
        assert np.array_equal(_frames(turbo, scene, 2, steps=4, guidance=1.0, shift=3.0), base)
    finally:
        turbo.enable_lora()
    # The worker's path gives the adapter's frames, and leaves the plain pipeline plain.
    config = _trained()["config"]
    loaded = _frames(turbo, scene, 2, steps=config["steps"], guidance=1.0, shift=config["flow_shift"])
    assert np.array_equal(_served(plain, scene, 2), loaded)
    assert np.array_equal(_frames(plain, scene, 2, steps=4, guidance=1.0, shift=3.0), base)


def test_the_registry_serves_turbo_as_the_adapter_was_trained():
    """generation/models.toml's turbo sub-table for framecast-toy points at this adapter and
    runs it with the steps and shift it was distilled for, without guidance."""
    rows = tomllib.loads((REPO / "generation" / "models.toml").read_text())["models"]
    entry = next(row for row in rows if row["name"] == TOY)
    assert "turbo" in entry.get("speeds", ()), "framecast-toy does not offer the turbo speed"
    turbo, config = entry["turbo"], _trained()["config"]
    # Relative to the repository or to the model's own folder (absolute paths pass either way).
    candidates = {(REPO / turbo["weights_path"]).resolve(), (REPO / entry["weights_path"] / turbo["weights_path"]).resolve()}
    assert TURBO_DIR.resolve() in candidates, turbo["weights_path"]
    assert turbo["weight_name"] == "pytorch_lora_weights.safetensors"
    assert (turbo["steps"], turbo["guidance"], turbo["flow_shift"]) == (config["steps"], 1.0, config["flow_shift"])


def _submit_turbo(client, auth, scene: world.Scene, seed: int) -> str:
    response = client.post(
        "/api/v1/videos", {"prompt": scene.caption, "model": TOY, "seed": seed, "speed": "turbo"},
        content_type="application/json", **auth,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    # The registry chose the turbo settings; nothing in the request asked for them.
    assert body["speed"] == "turbo" and body["steps"] <= 4 and body["guidance"] <= 1.0, body
    return body["id"]


@pytest.mark.services
@pytest.mark.slow
def test_turbo_videos_from_the_api_show_what_their_prompt_says(alice, client, start_worker):
    percent, share = judged_through_the_platform(alice, client, start_worker, _submit_turbo, label="framecast-toy turbo")
    seen, held_out = percent["seen"], percent["held-out"]
    for key in ("background", "colour", "motion"):
        assert seen[key] >= 90, f"seen prompts: {key} agrees in only {seen[key]:.1f}% of turbo videos"
        assert held_out[key] >= 85, f"held-out prompts: {key} agrees in only {held_out[key]:.1f}% of turbo videos"
    assert share["seen"] >= 90 and share["held-out"] >= 85, share
