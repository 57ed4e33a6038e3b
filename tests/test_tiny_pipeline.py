"""The tiny Wan pipeline: deterministic build, loading, generation, progress and cancellation.

Runs on the CPU in a few seconds; needs no network (everything is built locally).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers/transformers are imported

import numpy as np
import pytest

from gpu_workers import pipeline as gp
from gpu_workers.tiny_model import build_tiny_model, ensure_tiny_model

BASE = dict(
    prompt="a red ball rolls across the green grass",
    negative_prompt="blurry, low quality",
    seed=1234,
    width=64,
    height=64,
    num_frames=9,
    steps=8,
    guidance=5.0,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny"
    assert ensure_tiny_model(path) is True
    return path


@pytest.fixture(scope="module")
def pipe(model_dir: Path):
    gp.clear_pipeline_cache()
    yield gp.load_pipeline(model_dir)
    gp.clear_pipeline_cache()


def test_build_writes_a_complete_loadable_model_and_no_leftovers(model_dir: Path) -> None:
    assert (model_dir / "model_index.json").is_file()
    for part in ("transformer", "vae", "text_encoder"):
        assert list((model_dir / part).glob("*.safetensors")), part
    # The temporary build directory was renamed away, not left beside the model.
    assert sorted(p.name for p in model_dir.parent.iterdir()) == ["tiny"]


def test_ensure_does_not_rebuild_an_existing_model(model_dir: Path) -> None:
    index = model_dir / "model_index.json"
    before = index.stat().st_mtime_ns
    assert ensure_tiny_model(model_dir) is False
    assert index.stat().st_mtime_ns == before


def test_two_builds_are_byte_identical(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    build_tiny_model(other)
    ours = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    assert ours == theirs
    assert any(p.suffix == ".safetensors" for p in ours)
    for rel in ours:
        assert (model_dir / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_rebuild_replaces_an_existing_directory(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "stale.txt").write_text("half a model")
    build_tiny_model(target)
    assert (target / "model_index.json").is_file()
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_load_is_a_wan_pipeline_and_is_cached(pipe, model_dir: Path) -> None:
    assert type(pipe).__name__ == "WanPipeline"
    assert str(pipe.device) == ("cuda" if gp.torch.cuda.is_available() else "cpu")
    assert gp.load_pipeline(model_dir) is pipe
    assert gp.load_pipeline(str(model_dir)) is pipe


def test_load_missing_model_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        gp.load_pipeline(tmp_path / "nothing-here")


def test_same_seed_and_params_give_identical_frames(pipe) -> None:
    first = gp.generate_frames(pipe, **BASE)
    second = gp.generate_frames(pipe, **BASE)
    assert first.dtype == np.uint8
    assert first.tobytes() == second.tobytes()
    assert first.std() > 1, "frames should not be a flat colour"


def test_different_seed_gives_different_frames(pipe) -> None:
    a = gp.generate_frames(pipe, **BASE)
    b = gp.generate_frames(pipe, **{**BASE, "seed": BASE["seed"] + 1})
    assert a.shape == b.shape
    assert not np.array_equal(a, b)


def test_different_prompt_gives_different_frames(pipe) -> None:
    a = gp.generate_frames(pipe, **BASE)
    b = gp.generate_frames(pipe, **{**BASE, "prompt": "a blue bird flies over the sea"})
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(("width", "height", "num_frames"), [(64, 64, 9), (96, 64, 5), (32, 48, 1)])
def test_output_shape_matches_request(pipe, width: int, height: int, num_frames: int) -> None:
    frames = gp.generate_frames(
        pipe, **{**BASE, "width": width, "height": height, "num_frames": num_frames, "steps": 2}
    )
    assert frames.shape == (num_frames, height, width, 3)
    assert frames.dtype == np.uint8


@pytest.mark.parametrize(
    ("change", "message"),
    [({"width": 72}, "multiples of 16"), ({"height": 0}, "multiples of 16"), ({"num_frames": 8}, "4k\\+1"),
     ({"num_frames": 0}, "4k\\+1"), ({"steps": 0}, "steps")],
)
def test_sizes_the_pipeline_would_round_are_rejected(pipe, change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gp.generate_frames(pipe, **{**BASE, **change})


def test_on_step_reports_every_step_in_order(pipe) -> None:
    calls: list[tuple[int, int]] = []
    gp.generate_frames(pipe, **{**BASE, "steps": 5}, on_step=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_should_stop_cancels_after_the_current_step(pipe) -> None:
    calls: list[tuple[int, int]] = []
    with pytest.raises(gp.GenerationCancelled) as excinfo:
        gp.generate_frames(
            pipe,
            **BASE,
            on_step=lambda i, n: calls.append((i, n)),
            should_stop=lambda: len(calls) >= 2,
        )
    # diffusers skips every later step once _interrupt is set: no third callback.
    assert calls == [(1, 8), (2, 8)]
    assert (excinfo.value.steps_done, excinfo.value.steps_total) == (2, 8)
    # The pipeline resets the flag at the next call, so it still works afterwards.
    assert gp.generate_frames(pipe, **{**BASE, "steps": 2}).shape == (9, 64, 64, 3)


def test_should_stop_false_changes_nothing(pipe) -> None:
    plain = gp.generate_frames(pipe, **BASE)
    watched = gp.generate_frames(pipe, **BASE, should_stop=lambda: False)
    assert plain.tobytes() == watched.tobytes()


def test_interrupted_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_workers import tiny_model

    class HalfWritten:
        def save_pretrained(self, path: Path, **kwargs: object) -> None:
            (Path(path) / "model_index.json").write_text("{}")
            raise KeyboardInterrupt  # e.g. Ctrl-C or a kill midway through writing weights

    monkeypatch.setattr(tiny_model, "make_tiny_pipeline", lambda: HalfWritten())
    target = tmp_path / "tiny"
    with pytest.raises(KeyboardInterrupt):
        build_tiny_model(target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        gp.load_pipeline(target)


def test_warm_pipelines_are_kept_by_least_recent_use_within_the_budget(tmp_path, monkeypatch):
    from gpu_workers.pipeline import clear_pipeline_cache, load_pipeline, pipeline_bytes, warm_pipelines

    paths = [tmp_path / name for name in ("a", "b", "c")]
    for path in paths:
        build_tiny_model(path)
    clear_pipeline_cache()
    one = pipeline_bytes(load_pipeline(paths[0]))
    assert one > 0
    monkeypatch.setenv("FRAMECAST_WARM_MODELS_MB", str(2.5 * one / 2**20))  # room for two
    first = load_pipeline(paths[0])
    load_pipeline(paths[1])
    assert load_pipeline(paths[0]) is first  # still warm: not loaded again
    load_pipeline(paths[2])  # evicts the least recently used: b
    assert warm_pipelines() == [str(paths[0].resolve()), str(paths[2].resolve())]
    assert load_pipeline(paths[0]) is first
    clear_pipeline_cache()


def test_the_fast_modes_step_cache_changes_the_frames_only_for_its_own_call(tmp_path):
    from gpu_workers.pipeline import generate_frames, load_pipeline

    build_tiny_model(tmp_path / "m")
    pipe = load_pipeline(tmp_path / "m")
    args = dict(prompt="a kite", negative_prompt="", seed=1, width=128, height=128, num_frames=17, steps=20,
                guidance=5.0)
    standard = generate_frames(pipe, **args)
    fast = generate_frames(pipe, **args, step_cache_threshold=0.2)
    assert not np.array_equal(standard, fast)  # blocks were skipped
    assert np.array_equal(fast, generate_frames(pipe, **args, step_cache_threshold=0.2))  # still deterministic
    assert np.array_equal(standard, generate_frames(pipe, **args))  # the cache did not stay on
