"""The turbo speed: a model's few-step distillation adapter, declared in the registry and
offered, priced and validated by the web tier (the worker side is in test_adapters*)."""

import json
import textwrap

import pytest

from generation import catalog
from generation.forms import JobForm
from generation.params import JobParams
from generation.services import job_quote

from .test_api_videos import api  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("tiny_default")

TINY_WITH_TURBO = """
    [[models]]
    name = "framecast-tiny"
    label = "Framecast Tiny"
    pipeline = "WanPipeline"
    builtin = true
    remix_pipeline = "WanVideoToVideoPipeline"
    size_multiple = 16
    min_side = 32
    max_side = 256
    max_pixels_per_frame = 65536
    frame_step = 4
    max_frames = 33
    max_steps = 50
    speeds = {speeds}
    defaults = {{ width = 128, height = 128, num_frames = 17, fps = 8, steps = 20, guidance = 5.0 }}
    {turbo}
"""

TURBO = """
    [models.turbo]
    weights_path = "{folder}"
    steps = 4
    guidance = 1.0
    flow_shift = 5.0
    price_factor = 0.55
"""


def registry(tmp_path, *, speeds='["standard", "fast", "turbo"]', turbo=TURBO, with_file=True):
    folder = tmp_path / "turbo"
    folder.mkdir(exist_ok=True)
    if with_file:
        (folder / "pytorch_lora_weights.safetensors").write_bytes(b"")  # only its presence is read here
    text = TINY_WITH_TURBO.format(speeds=speeds, turbo=textwrap.dedent(turbo).format(folder=folder))
    path = tmp_path / "models.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def turbo_registry(settings, tmp_path):
    settings.FRAMECAST_MODELS_FILE = registry(tmp_path)
    return catalog.get_model("framecast-tiny")


def test_the_registry_declares_turbo_as_an_adapter_with_steps_guidance_shift_and_price(turbo_registry):
    turbo = turbo_registry.turbo
    assert (turbo.steps, turbo.guidance, turbo.flow_shift, turbo.price_factor) == (4, 1.0, 5.0, 0.55)
    assert turbo.weights_file().name == "pytorch_lora_weights.safetensors"
    assert turbo_registry.offered_speeds() == ("standard", "fast", "turbo")


def test_turbo_is_offered_only_once_its_adapter_file_is_there(settings, tmp_path):
    settings.FRAMECAST_MODELS_FILE = registry(tmp_path, with_file=False)
    spec = catalog.get_model("framecast-tiny")
    assert spec.offered_speeds() == ("standard", "fast")
    form = JobForm(data={"prompt": "a boat", "speed": "turbo"})
    assert not form.is_valid()
    assert form.errors["speed"] == ["Speed: framecast-tiny offers only the speeds standard, fast (got turbo)."]


def test_the_shipped_registry_declares_turbo_for_the_toy_model_and_wan():
    models = catalog.all_models()
    assert models["framecast-toy"].turbo.weights_path_setting == "gpu_workers/weights/framecast-toy/turbo"
    assert models["wan2.1-t2v-14b"].turbo.weights_env == "WAN21_T2V_14B_TURBO_LORA_PATH"
    for spec in models.values():
        if spec.turbo is not None:
            assert spec.turbo.steps <= 4 and spec.turbo.guidance == 1.0 and spec.turbo.price_factor < 1


@pytest.mark.parametrize(
    "turbo, speeds, problem",
    [
        (TURBO.replace("steps = 4", "steps = 0"), None, "steps must be a whole number of at least 1"),
        (TURBO.replace("steps = 4", "steps = 80"), None, "turbo steps exceed max_steps"),
        (TURBO.replace("price_factor = 0.55", "price_factor = 1.5"), None, "price_factor must be more than 0 and at most 1"),
        (TURBO.replace("    guidance = 1.0\n", ""), None, "missing guidance"),
        (TURBO.replace("flow_shift = 5.0", "flow_shift = -1.0"), None, "flow_shift must be positive"),
        (TURBO + '    weights_env = "X"\n', None, "give exactly one of weights_path, weights_env"),
        (TURBO + "    rank = 4\n", None, "unexpected keyword argument 'rank'"),
        (TURBO, '["standard"]', "the turbo speed and a [models.turbo] adapter go together"),
    ],
)
def test_a_bad_turbo_declaration_is_refused_with_the_reason(settings, tmp_path, turbo, speeds, problem):
    settings.FRAMECAST_MODELS_FILE = registry(tmp_path, turbo=turbo, **({"speeds": speeds} if speeds else {}))
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        catalog.all_models()


@pytest.mark.django_db
def test_turbo_runs_the_adapters_steps_and_guidance(turbo_registry):
    form = JobForm(data={"prompt": "a boat", "speed": "turbo"})
    assert form.is_valid(), form.errors
    params = form.params()
    assert (params.speed, params.steps, params.guidance) == ("turbo", 4, 1.0)
    # The same values given explicitly are accepted too.
    assert JobForm(data={"prompt": "a boat", "speed": "turbo", "steps": 4, "guidance": 1}).is_valid()


@pytest.mark.django_db
def test_turbo_with_other_steps_or_guidance_is_refused_by_name(turbo_registry):
    form = JobForm(data={"prompt": "a boat", "speed": "turbo", "steps": 20, "guidance": 5})
    assert not form.is_valid()
    assert form.errors["steps"] == [
        "Inference steps: The turbo speed of framecast-tiny runs steps 4 (got 20): leave steps out, or choose the standard speed."
    ]
    assert "runs guidance 1 (got 5)" in form.errors["guidance"][0]


@pytest.mark.django_db
def test_the_studio_form_lets_turbo_replace_its_always_filled_steps(turbo_registry):
    from generation.studio import StudioForm

    form = StudioForm(data={"prompt": "a boat", "speed": "turbo", "steps": 20, "guidance": 5})
    assert form.is_valid(), form.errors
    assert (form.params().steps, form.params().guidance) == (4, 1.0)


def _params(**changes):
    base = dict(
        model_name="framecast-tiny", prompt="a boat", negative_prompt="", seed=1, width=128, height=128,
        num_frames=17, fps=8, steps=20, guidance=5.0,
    )
    return JobParams(**{**base, **changes})


@pytest.mark.django_db
def test_turbo_is_priced_per_step_at_its_adapters_factor(settings, tmp_path):
    # On Wan 2.1 1.3B at its defaults: 50 standard steps cost 100 credits, 4 turbo steps at
    # 0.55 cost 4.4, rounded up to 5.
    turbo = TURBO.replace("price_factor = 0.55", "price_factor = 0.55")
    text = TINY_WITH_TURBO.replace("max_side = 256", "max_side = 1280").replace("max_pixels_per_frame = 65536", "max_pixels_per_frame = 921600")
    folder = tmp_path / "turbo"
    folder.mkdir()
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"")
    path = tmp_path / "models.toml"
    path.write_text(textwrap.dedent(text.format(speeds='["standard", "turbo"]', turbo=textwrap.dedent(turbo).format(folder=folder))))
    settings.FRAMECAST_MODELS_FILE = path
    reference = dict(width=832, height=480, num_frames=81, fps=16)
    assert job_quote(_params(**reference, steps=50, guidance=5.0)) == 100
    assert job_quote(_params(**reference, steps=4, guidance=1.0, speed="turbo")) == 5


def test_turbo_and_standard_videos_have_different_cache_keys():
    assert _params(speed="turbo", steps=4, guidance=1.0).request_key(seed=1) != _params(steps=4, guidance=1.0).request_key(seed=1)


@pytest.mark.django_db
def test_the_models_endpoint_offers_turbo_with_its_note_steps_and_price(api, turbo_registry):  # noqa: F811
    tiny = next(model for model in api.get("models").json()["data"] if model["id"] == "framecast-tiny")
    assert tiny["speeds"] == ["standard", "fast", "turbo"]
    options = {option["id"]: option for option in tiny["speed_options"]}
    assert options["turbo"]["note"] == "fewer steps: faster and cheaper, may lose fine motion"
    assert (options["turbo"]["steps"], options["turbo"]["guidance"], options["turbo"]["fixes_steps_and_guidance"]) == (4, 1.0, True)
    assert (options["standard"]["steps"], options["standard"]["fixes_steps_and_guidance"]) == (20, False)
    assert options["turbo"]["price_factor_per_step"] == 0.55
    assert options["turbo"]["price_credits_at_defaults"] <= options["standard"]["price_credits_at_defaults"]


@pytest.mark.django_db
def test_a_turbo_request_through_the_api_records_turbo_steps_and_guidance(api, turbo_registry):  # noqa: F811
    response = api.post("videos", {"prompt": "a boat", "speed": "turbo", "seed": 3})
    assert response.status_code == 201, response.content
    video = response.json()
    assert (video["speed"], video["steps"], video["guidance"], video["seed"]) == ("turbo", 4, 1.0, 3)


@pytest.mark.django_db
def test_turbo_with_steps_through_the_api_is_a_400_naming_steps_and_writes_nothing(api, turbo_registry):  # noqa: F811
    from generation.models import Job

    response = api.post("videos", {"prompt": "a boat", "speed": "turbo", "steps": 30})
    assert response.status_code == 400
    body = response.json()
    assert "steps" in json.dumps(body) and "turbo" in json.dumps(body)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_the_openai_layer_takes_speed_as_an_extra_field(turbo_registry, alice, client):
    from accounts.models import Membership
    from accounts.api_keys import apikey_create

    from .conftest import on_plan

    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    ok = client.post("/openai/v1/videos", {"prompt": "a boat", "model": "framecast-tiny", "speed": "turbo"}, **headers)
    assert ok.status_code == 200, ok.content
    from generation.models import Job

    job = Job.objects.get()
    assert (job.speed, job.steps, job.guidance) == ("turbo", 4, 1.0)
    bad = client.post("/openai/v1/videos", {"prompt": "a boat", "model": "framecast-tiny", "speed": "warp"}, **headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "speed"


def _turbo_job(team, user, **changes):
    from generation.services import job_submit

    return job_submit(team=team, user=user, params=_params(speed="turbo", steps=4, guidance=1.0, seed=42, **changes))


@pytest.mark.django_db
def test_a_turbo_video_is_rendered_again_at_full_quality_in_one_api_call(api, turbo_registry, alice):  # noqa: F811
    source = _turbo_job(alice.personal_team, alice)
    response = api.post(f"videos/{source.id}/full-quality")
    assert response.status_code == 201, response.content
    video = response.json()
    assert (video["speed"], video["steps"], video["guidance"]) == ("standard", 20, 5.0)  # the model's defaults
    assert (video["seed"], video["prompt"], video["width"], video["num_frames"]) == (42, "a boat", 128, 17)
    # A standard video is already at full quality: 409, nothing made.
    again = api.post(f"videos/{video['id']}/full-quality")
    assert again.status_code == 409 and again.json()["error"]["type"] == "already_full_quality"


@pytest.mark.django_db
def test_the_studio_offers_full_quality_on_a_turbo_video_and_one_click_queues_it(client, turbo_registry, alice):
    from generation.models import Job

    client.force_login(alice)
    source = _turbo_job(alice.personal_team, alice)
    page = client.get(source.get_absolute_url())
    assert b'id="full-quality"' in page.content and b"Turbo (fewest steps)" in page.content
    response = client.post(f"/jobs/{source.id}/full-quality/")
    made = Job.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302 and response["Location"] == made.get_absolute_url()
    assert (made.speed, made.steps, made.guidance, made.seed) == ("standard", 20, 5.0, 42)
    assert b'id="full-quality"' not in client.get(made.get_absolute_url()).content


@pytest.mark.django_db
def test_a_remix_of_a_turbo_video_runs_at_the_standard_speed_with_the_models_steps(turbo_registry, alice):
    from generation.inputs import remix_params
    from generation.models import Job

    source = _turbo_job(alice.personal_team, alice)
    Job.objects.filter(pk=source.pk).update(state=Job.State.SUCCEEDED, video="jobs/x/video.mp4")
    source.refresh_from_db()
    params = remix_params(source, prompt="a ship", strength=1.0)
    assert (params.speed, params.steps, params.guidance, params.strength) == ("standard", 20, 5.0, 1.0)


@pytest.mark.django_db
def test_the_openai_layer_lists_models_with_their_speeds_for_the_sdk(turbo_registry, alice):
    from django.test import Client

    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    from .conftest import on_plan

    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    response = Client().get("/openai/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    tiny = next(model for model in response.json()["data"] if model["id"] == "framecast-tiny")
    assert tiny["object"] == "model" and tiny["speeds"] == ["standard", "fast", "turbo"]
    turbo = next(option for option in tiny["speed_options"] if option["id"] == "turbo")
    assert turbo["note"] == "fewer steps: faster and cheaper, may lose fine motion" and turbo["steps"] == 4
