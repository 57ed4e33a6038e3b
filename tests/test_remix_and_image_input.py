"""Remixes (video to video) and reference images (image to video) in the worker: the
same weights behind diffusers' matching pipeline classes, and the native API for them."""

import io

import numpy as np
import pytest
from PIL import Image

from generation.inputs import reference_image_png, remix_params
from generation.models import Job
from generation.services import JobParams, job_submit
from gpu_workers.encode import decode_frames
from gpu_workers.runner import run_next

from .conftest import on_plan

pytestmark = pytest.mark.django_db

BASE = dict(model_name="framecast-tiny", negative_prompt="", seed=5, width=64, height=48, num_frames=9, fps=8,
            steps=6, guidance=5.0)


def generate(user, **fields) -> Job:
    job = job_submit(team=user.personal_team, user=user, params=JobParams(**{"prompt": "a kite", **BASE, **fields}))
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error_detail
    return job


def frames(job) -> np.ndarray:
    with job.video.open("rb") as file:
        return decode_frames(file.read()).astype(float)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


ARGS = dict(prompt="a boat", negative_prompt="", seed=9, width=64, height=48, num_frames=9, steps=6, guidance=5.0)


@pytest.fixture(scope="module")
def tiny_pipe(tiny_model):
    from gpu_workers import pipeline

    return pipeline.load_pipeline(tiny_model)


def test_a_remix_follows_its_source_at_low_strength_and_only_the_prompt_at_full_strength(tiny_pipe):
    from gpu_workers import pipeline

    remixer = pipeline.variant(tiny_pipe, "WanVideoToVideoPipeline")
    black, white = np.zeros((9, 48, 64, 3), np.uint8), np.full((9, 48, 64, 3), 255, np.uint8)

    def apart(strength):
        made = [pipeline.generate_frames(remixer, video=source, strength=strength, **ARGS).astype(float)
                for source in (black, white)]
        return np.abs(made[0] - made[1]).mean()

    # At 0.3 the source shows through: two sources give two videos. At 1.0 the frames are
    # re-generated from noise alone: the source no longer matters. (The random tiny VAE
    # squeezes every source towards grey, hence the small absolute figures.)
    assert apart(0.3) > 1.0 and apart(1.0) < 0.01


def test_the_reference_image_conditions_the_video_deterministically(tiny_pipe):
    from gpu_workers import pipeline

    animator = pipeline.variant(tiny_pipe, "WanImageToVideoPipeline")
    red, blue = np.tile([220, 20, 20], (48, 64, 1)), np.tile([20, 20, 220], (48, 64, 1))
    plain = pipeline.generate_frames(tiny_pipe, **ARGS).astype(float)
    from_red = pipeline.generate_frames(animator, image=red, **ARGS).astype(float)
    from_red_again = pipeline.generate_frames(animator, image=red, **ARGS).astype(float)
    from_blue = pipeline.generate_frames(animator, image=blue, **ARGS).astype(float)
    # The random tiny VAE squeezes colours towards grey, so red and blue land close together,
    # but conditioning on an image clearly changes the video, and each image its own way.
    assert np.abs(from_red - plain).mean() > 1 and np.abs(from_red - from_blue).mean() > 0.05
    assert np.array_equal(from_red, from_red_again)


def test_remix_and_image_jobs_run_through_the_worker(alice, tiny_model):
    on_plan(alice.personal_team, "pro")
    source = generate(alice)
    remix = job_submit(team=alice.personal_team, user=alice, params=remix_params(source, prompt="a boat", strength=0.4))
    run_next("cpu", worker="test")
    remix.refresh_from_db()
    assert remix.state == Job.State.SUCCEEDED and remix.remixed_from == source and remix.strength == 0.4
    assert (remix.width, remix.height, remix.num_frames, remix.prompt) == (64, 48, 9, "a boat")

    red = png(np.tile([220, 20, 20], (48, 64, 1)))
    animated = generate(alice, input_image=reference_image_png(red, model_name="framecast-tiny"))
    assert animated.input_image and frames(animated).shape[0] == 9


def test_a_remix_whose_source_was_deleted_meanwhile_fails_clearly_and_refunds(alice, tiny_model):
    from billing.ledger import account_for_team
    from generation.services import job_delete

    on_plan(alice.personal_team, "pro")
    source = generate(alice)
    before = account_for_team(alice.personal_team).available
    remix = job_submit(team=alice.personal_team, user=alice, params=remix_params(source, prompt="a boat"))
    job_delete(source)
    run_next("cpu", worker="test")
    remix.refresh_from_db()
    assert remix.state == Job.State.FAILED
    assert remix.error_message == "The video being remixed was deleted before its remix started."
    assert account_for_team(alice.personal_team).available == before


def test_the_sprite_sheet_is_an_evenly_spaced_grid_of_the_frames(alice, tiny_model):
    job = generate(alice, num_frames=17)
    sheet = Image.open(job.spritesheet.open("rb"))
    # 16 tiles of the 17 frames, first and last included, at the stored size (64×48 at 3×)
    assert sheet.size == (4 * 192, 4 * 144)
    first_tile = np.asarray(sheet.crop((0, 0, 192, 144))).astype(float)
    assert np.abs(first_tile - frames(job)[0]).mean() < 12  # JPEG of the first frame


@pytest.fixture
def api(alice, client):
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    on_plan(alice.personal_team, "pro")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    return lambda method, path, body=None: getattr(client, method)(
        f"/api/v1/{path}", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )


def test_the_native_api_remixes_with_a_strength_and_serves_the_sprite_sheet(api, alice, tiny_model):
    source = generate(alice)
    assert api("get", f"videos/{source.id}/spritesheet").status_code == 200
    response = api("post", f"videos/{source.id}/remix", {"prompt": "a boat", "strength": 0.3})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["remixed_from"], body["strength"], body["prompt"]) == (str(source.id), 0.3, "a boat")
    assert body["price_credits"] == source.price_credits


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"prompt": "a boat", "strength": 0}, "strength", "more than 0"),
        ({"prompt": "a boat", "strength": 1.5}, "strength", "1"),
        ({"prompt": ""}, "prompt", ""),
    ],
)
def test_a_bad_remix_request_names_the_field_and_holds_nothing(api, alice, tiny_model, body, field, words):
    source = generate(alice)
    response = api("post", f"videos/{source.id}/remix", body)
    assert response.status_code == 400 and response.json()["error"]["field"] == field
    assert words in response.json()["error"]["message"]
    assert Job.objects.count() == 1


def test_a_remix_with_no_denoising_step_left_is_refused_naming_strength(api, alice, tiny_model):
    """A 1-step video remixed at 0.5 would run int(1 × 0.5) = 0 steps and fail on the GPU:
    it is a 400 naming `strength` and saying what would work, with no job and no hold."""
    from billing.ledger import account_for_team

    source = generate(alice, steps=1)
    before = account_for_team(alice.personal_team)
    response = api("post", f"videos/{source.id}/remix", {"prompt": "a boat", "strength": 0.5})
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["field"] == "strength" and "at least 1" in error["message"]
    after = account_for_team(alice.personal_team)
    assert Job.objects.count() == 1 and (after.available, after.held_credits) == (before.available, before.held_credits)
    assert api("post", f"videos/{source.id}/remix", {"prompt": "a boat", "strength": 1}).status_code == 201


def test_a_remix_of_a_fast_video_runs_at_standard_speed(alice, tiny_model):
    on_plan(alice.personal_team, "pro")
    source = generate(alice, speed="fast")
    remix = job_submit(team=alice.personal_team, user=alice, params=remix_params(source, prompt="a boat", strength=0.5))
    run_next("cpu", worker="test")
    remix.refresh_from_db()
    assert remix.speed == "standard" and remix.state == Job.State.SUCCEEDED, remix.error_detail


def test_only_a_finished_video_can_be_remixed(api, alice):
    queued = job_submit(team=alice.personal_team, user=alice, params=JobParams(prompt="a kite", **BASE))
    response = api("post", f"videos/{queued.id}/remix", {"prompt": "a boat"})
    assert response.status_code == 409 and "finished" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"GIF89a" + b"\0" * 20, "could not be read"),
        (b"%PDF-1.4", "could not be read"),
    ],
)
def test_a_reference_image_that_is_not_one_is_refused_by_name(data, words):
    from core.errors import Refusal

    with pytest.raises(Refusal) as refused:
        reference_image_png(data, model_name="framecast-tiny")
    assert refused.value.field == "input_image" and words in refused.value.message
