"""The model registry (generation/models.toml) and pool routing by model and size."""

import json
import textwrap

import pytest

from generation import catalog
from generation.forms import JobForm

from .conftest import on_plan
from .test_api_videos import api  # noqa: F401 - fixture

# framecast-tiny's figures (sizes, lengths, prices), not the shipped default's, below.
pytestmark = pytest.mark.usefixtures("tiny_default")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


WAN_LIKE = """
    [[models]]
    name = "{name}"
    label = "Test model"
    pipeline = "WanPipeline"
    {source}
    size_multiple = 16
    min_side = 32
    max_side = 512
    max_pixels_per_frame = 262144
    frame_step = 4
    max_frames = 33
    max_steps = 50
    speeds = {speeds}
    defaults = {{ width = 64, height = 64, num_frames = 9, fps = 8, steps = 4, guidance = 5.0 }}
"""


def test_every_declared_model_names_its_pipeline_dtypes_and_speeds():
    for spec in catalog.all_models().values():
        assert spec.pipeline.endswith("Pipeline") and spec.dtype in {"float32", "bfloat16", "float16"}
        assert set(spec.speeds) <= set(catalog.SPEEDS) and "standard" in spec.speeds
        assert spec.defaults["width"] <= spec.max_side and (spec.defaults["num_frames"] - 1) % spec.frame_step == 0


def test_a_model_is_offered_only_once_its_weights_are_configured(settings, tmp_path, monkeypatch):
    settings.FRAMECAST_MODELS_FILE = write(
        tmp_path, "models.toml", WAN_LIKE.format(name="custom", source='weights_env = "CUSTOM_MODEL_PATH"', speeds='["standard"]')
    )
    monkeypatch.delenv("CUSTOM_MODEL_PATH", raising=False)
    assert catalog.get_model("custom") is None
    monkeypatch.setenv("CUSTOM_MODEL_PATH", str(tmp_path))
    assert catalog.get_model("custom").weights_path() == tmp_path


@pytest.mark.parametrize(
    "source, speeds, problem",
    [
        ('builtin = true\n    weights_env = "X"', '["standard"]', "exactly one of builtin, weights_path, weights_env"),
        ("builtin = true", '["standard", "warp"]', "unknown speeds ['warp']"),
        ("builtin = true", '["standard", "turbo"]', "the turbo speed and a [models.turbo] adapter go together"),
    ],
)
def test_a_bad_registry_entry_is_refused_with_the_reason(settings, tmp_path, source, speeds, problem):
    settings.FRAMECAST_MODELS_FILE = write(tmp_path, "models.toml", WAN_LIKE.format(name="bad", source=source, speeds=speeds))
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        catalog.all_models()


@pytest.mark.django_db
def test_a_speed_the_model_does_not_offer_is_refused_by_name(settings, tmp_path):
    settings.FRAMECAST_MODELS_FILE = write(
        tmp_path, "models.toml", WAN_LIKE.format(name="framecast-tiny", source="builtin = true", speeds='["standard"]')
    )
    form = JobForm(data={"prompt": "a boat", "model": "framecast-tiny", "speed": "fast"})
    assert not form.is_valid()
    assert form.errors["speed"] == ["Speed: framecast-tiny offers only the speeds standard (got fast)."]


@pytest.mark.django_db
def test_jobs_too_large_for_the_small_gpus_go_to_the_big_pool(alice, settings, tmp_path):
    from generation.services import JobParams, job_submit

    settings.FRAMECAST_POOLS_FILE = write(
        tmp_path,
        "pools.toml",
        """
        [[pools]]
        name = "l4"
        gpu = "NVIDIA L4"
        price_per_gpu_hour = 0.8
        models = ["framecast-tiny"]
        max_pixels_per_frame = 4096

        [[pools]]
        name = "h100"
        gpu = "NVIDIA H100"
        price_per_gpu_hour = 2.69
        models = ["framecast-tiny"]
        """,
    )
    on_plan(alice.personal_team, "pro")
    base = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=1, fps=8, guidance=5.0,
                num_frames=9, steps=4)
    small = job_submit(team=alice.personal_team, user=alice, params=JobParams(width=64, height=64, **base))
    large = job_submit(team=alice.personal_team, user=alice, params=JobParams(width=128, height=128, **base))
    assert (small.pool, large.pool) == ("l4", "h100")


@pytest.mark.django_db
def test_a_size_no_pool_runs_is_refused_before_anything_is_held(settings, tmp_path):
    settings.FRAMECAST_POOLS_FILE = write(
        tmp_path,
        "pools.toml",
        """
        [[pools]]
        name = "l4"
        gpu = "NVIDIA L4"
        price_per_gpu_hour = 0.8
        models = ["framecast-tiny"]
        max_pixels_per_frame = 4096
        """,
    )
    form = JobForm(data={"prompt": "a boat", "model": "framecast-tiny", "width": 128, "height": 128})
    assert not form.is_valid()
    assert form.errors["width"] == [
        "Width: No worker pool runs framecast-tiny at 128×128 with 17 frames; choose a smaller size or fewer frames."
    ]


def test_the_models_endpoint_lists_speeds_pipeline_and_pool(api):  # noqa: F811
    tiny = next(model for model in api.get("models").json()["data"] if model["id"] == "framecast-tiny")
    assert (tiny["speeds"], tiny["pipeline"], tiny["pool"]) == (["standard", "fast"], "WanPipeline", "cpu")


def test_the_worker_refuses_weights_of_another_pipeline_class(tiny_model, tmp_path, settings):
    from gpu_workers import pipeline

    spec = catalog.TINY
    assert pipeline.load_model(spec) is not None
    index = json.loads((tiny_model / "model_index.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "LTXPipeline"}))
    settings.FRAMECAST_MODELS_DIR = tmp_path
    with pytest.raises(TypeError, match="holds a LTXPipeline, but the registry declares WanPipeline"):
        pipeline.load_model(catalog.ModelSpec(**{**spec.__dict__, "name": "other"}))
