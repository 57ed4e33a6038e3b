"""Every invalid field is answered with a 400 that names it, and nothing is queued."""

import pytest

from generation.models import Job

from .conftest import SMALL_REQUEST

# framecast-tiny's figures (sizes, lengths, prices), not the shipped default's, below.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]

BAD_FIELDS = [
    ("prompt", "", "Prompt is required"),
    ("prompt", "    ", "Prompt is required"),
    ("prompt", "x" * 2001, "Prompt: Ensure this value has at most 2000 characters"),
    ("width", "100", "Width must be a multiple of 16"),
    ("width", "2048", "Width must be between 32 and 256"),
    ("width", "wide", "Width: Enter a whole number"),
    ("height", "8", "Height must be between 32 and 256"),
    ("height", "50", "Height must be a multiple of 16"),
    ("num_frames", "10", "Frames must be 4×k+1"),
    ("num_frames", "0", "Frames must be between 1 and 33"),
    ("num_frames", "81", "Frames must be between 1 and 33"),
    ("steps", "0", "Inference steps must be between 1 and 50"),
    ("steps", "500", "Inference steps must be between 1 and 50"),
    ("fps", "0", "FPS: Ensure this value is greater than or equal to 1"),
    ("fps", "240", "FPS: Ensure this value is less than or equal to 30"),
    ("guidance", "-1", "Guidance scale: Ensure this value is greater than or equal to 0"),
    ("guidance", "99", "Guidance scale: Ensure this value is less than or equal to 20"),
    ("seed", "-5", "Seed: Ensure this value is greater than or equal to 0"),
    ("seed", str(2**32), "Seed: Ensure this value is less than or equal to 4294967295"),
    ("model", "sora-2", "Select a valid choice"),
]


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_FIELDS])
def test_bad_field_is_named_and_nothing_is_queued(
    alice_client, django_capture_on_commit_callbacks, field, value, message
):
    with django_capture_on_commit_callbacks() as dispatched:
        response = alice_client.post("/", {**SMALL_REQUEST, field: value})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in errors[field][0]
    assert message in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert Job.objects.count() == 0
    assert dispatched == []


def test_empty_settings_take_the_models_defaults_and_a_random_seed(alice_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as dispatched:
        response = alice_client.post("/", {"prompt": "  waves at dusk  "})
    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.prompt, job.model_name) == ("waves at dusk", "framecast-tiny")
    assert (job.width, job.height, job.num_frames, job.fps, job.steps, job.guidance) == (128, 128, 17, 8, 20, 5.0)
    assert 0 <= job.seed < 2**32
    assert len(dispatched) == 1


def test_seeds_are_random_when_not_given(alice_client):
    for _ in range(3):
        alice_client.post("/", {"prompt": "waves"})
    assert len(set(Job.objects.values_list("seed", flat=True))) == 3


def test_given_seed_is_recorded(alice_client):
    alice_client.post("/", {**SMALL_REQUEST, "seed": "4294967295"})
    assert Job.objects.get().seed == 2**32 - 1


def test_anonymous_cannot_generate(client):
    response = client.post("/", SMALL_REQUEST)
    assert response.status_code == 302
    assert Job.objects.count() == 0
