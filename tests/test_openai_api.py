"""`/openai/v1/`: the official `openai` SDK, pointed at Framecast, just works.

The SDK is the pinned release in the dev dependencies; it talks HTTP to a live ASGI server
(and, where videos must finish, a real Celery worker process)."""

import io

import openai
import pytest
from PIL import Image

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing.ledger import account_for_team
from generation.models import Job
from gpu_workers.encode import probe_mp4

from .conftest import client_for, on_plan

# framecast-tiny's figures (sizes, lengths, prices), not the shipped default's, below.
pytestmark = pytest.mark.usefixtures("tiny_default")

SMALL = {"model": "sora-2", "seconds": "1", "size": "64x48"}


@pytest.fixture
def key(alice):
    on_plan(alice.personal_team, "pro")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice, team=alice.personal_team), name="sora")
    return secret


@pytest.fixture
def sora(asgi_server, key):
    return openai.OpenAI(api_key=key, base_url=f"{asgi_server}/openai/v1", max_retries=0, timeout=60)


def png(color=(200, 30, 30), size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.services
@pytest.mark.slow
def test_the_official_sdk_creates_polls_lists_downloads_remixes_and_deletes(sora, start_worker):
    start_worker()
    video = sora.videos.create_and_poll(prompt="a red kite over a hill", poll_interval_ms=500, **SMALL)
    assert video.status == "completed", video.error
    assert (video.object, video.progress, video.size, video.model) == ("video", 100, "64x48", "framecast-tiny")
    assert video.completed_at >= video.created_at and video.id.startswith("video_")

    assert sora.videos.retrieve(video.id).status == "completed"
    assert [v.id for v in sora.videos.list()] == [video.id]

    mp4 = sora.videos.download_content(video.id).read()
    assert probe_mp4(mp4)["frames"] == 9 and probe_mp4(mp4)["codec"] == "h264"
    thumbnail = Image.open(io.BytesIO(sora.videos.download_content(video.id, variant="thumbnail").read()))
    sheet = Image.open(io.BytesIO(sora.videos.download_content(video.id, variant="spritesheet").read()))
    assert thumbnail.format == sheet.format == "JPEG"
    # The stored size (64x48 generated, at 3×); 9 frames: a 3 × 3 grid.
    assert thumbnail.size == (192, 144) and sheet.size == (3 * 192, 3 * 144)

    remix = sora.videos.remix(video.id, prompt="a blue kite over a hill")
    assert remix.remixed_from_video_id == video.id and remix.status == "queued"
    remix = sora.videos.poll(remix.id, poll_interval_ms=500)
    assert remix.status == "completed", remix.error
    assert probe_mp4(sora.videos.download_content(remix.id).read())["frames"] == 9

    from_image = sora.videos.create_and_poll(
        prompt="a kite", input_reference=("red.png", png(), "image/png"), poll_interval_ms=500, **SMALL
    )
    assert from_image.status == "completed", from_image.error
    assert Job.objects.get(pk=from_image.id.removeprefix("video_")).input_image

    deleted = sora.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        sora.videos.retrieve(video.id)
    assert {v.id for v in sora.videos.list()} == {remix.id, from_image.id}


@pytest.mark.parametrize(
    "request_fields, param, words",
    [
        ({"size": "4000x4000"}, "size", "between 32 and 256"),
        ({"size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"seconds": "12"}, "seconds", "at most 4"),
        ({"model": "no-such-model"}, "model", "does not exist"),
        ({"prompt": "\u200b\u00ad\u2060"}, "prompt", "is required"),  # invisible characters only
    ],
)
def test_bad_parameters_are_the_sdks_bad_request_error_naming_the_parameter(sora, request_fields, param, words):
    with pytest.raises(openai.BadRequestError) as raised:
        sora.videos.create(**{"prompt": "a kite", **SMALL, **request_fields})
    assert raised.value.param == param and words in raised.value.message
    assert not Job.objects.exists()


def test_a_request_with_only_a_prompt_runs_on_the_default_models_own_size_and_length(sora, settings):
    """OpenAI's default length is 4 s; the shipped default model makes at most 2, so a bare
    request gets its own defaults instead of an error about a parameter nobody sent."""
    settings.FRAMECAST_DEFAULT_MODEL = "framecast-toy"
    video = sora.videos.create(prompt="a red circle moving left on a black background")
    job = Job.objects.get()
    assert (job.model_name, job.width, job.height, job.num_frames) == ("framecast-toy", 32, 32, 9)
    assert (video.model, video.size) == ("framecast-toy", "32x32")


def test_a_length_above_the_plans_limit_is_a_bad_request_naming_seconds(sora):
    from billing.models import Plan

    Plan.objects.filter(slug="pro").update(max_duration_seconds=1)
    with pytest.raises(openai.BadRequestError) as raised:
        sora.videos.create(prompt="a kite", **{**SMALL, "seconds": "2"})
    assert raised.value.param == "seconds" and "plan's limit of 1 s" in raised.value.message
    assert raised.value.code == "plan_limit_duration" and not Job.objects.exists()


def test_an_unknown_video_is_not_found_and_another_teams_video_too(sora, charlie):
    with pytest.raises(openai.NotFoundError):
        sora.videos.retrieve("video_" + "0" * 32)
    theirs = Job.objects.create(
        team=charlie.personal_team, created_by=charlie, prompt="private", seed=1, width=64, height=48, num_frames=9,
        fps=8, steps=4, guidance=5.0, model_name="framecast-tiny", pool="cpu",
    )
    with pytest.raises(openai.NotFoundError):
        sora.videos.retrieve(f"video_{theirs.id.hex}")
    with pytest.raises(openai.NotFoundError):
        sora.videos.delete(f"video_{theirs.id.hex}")
    assert Job.objects.filter(pk=theirs.pk).exists()


def test_an_exhausted_balance_is_openais_insufficient_quota(asgi_server, charlie):
    _, secret = apikey_create(membership=Membership.objects.get(user=charlie, team=charlie.personal_team), name="x")
    from billing.models import BillingAccount

    on_plan(charlie.personal_team, "creator")  # API access, but every credit spent
    BillingAccount.objects.filter(team=charlie.personal_team).update(subscription_credits=0, purchased_credits=0)
    broke = openai.OpenAI(api_key=secret, base_url=f"{asgi_server}/openai/v1", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        broke.videos.create(prompt="a kite", **SMALL)
    assert raised.value.code == "insufficient_quota" and "credits" in raised.value.message
    assert not Job.objects.exists()


def test_a_wrong_key_is_the_sdks_authentication_error(asgi_server):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="fc_wrong", base_url=f"{asgi_server}/openai/v1", max_retries=0).videos.list()


def test_a_video_made_through_openai_is_the_same_job_for_the_native_api_and_the_gallery(sora, key, alice, client):
    video = sora.videos.create(prompt="a paper boat", **SMALL)
    job = Job.objects.get(pk=video.id.removeprefix("video_"))
    native = client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Bearer {key}").json()["data"]
    assert [item["id"] for item in native] == [str(job.id)]
    same = client.post(
        "/api/v1/videos",
        {"prompt": "a paper boat", "width": 64, "height": 48, "num_frames": 9},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    ).json()
    assert same["price_credits"] == job.price_credits > 0
    assert "a paper boat" in client_for(alice).get("/gallery/").content.decode()


def test_listing_pages_with_after_and_limit_in_either_order(sora):
    made = [sora.videos.create(prompt=f"kite {n}", **SMALL).id for n in range(3)]
    first = sora.videos.list(limit=2)
    assert [v.id for v in first.data] == made[::-1][:2] and first.has_more
    assert [v.id for v in sora.videos.list(limit=2, after=first.data[-1].id).data] == [made[0]]
    assert [v.id for v in sora.videos.list(order="asc")] == made
    assert [v.id for v in sora.videos.list(limit=1)] == made[::-1]  # the SDK follows the pages


def test_a_queued_video_deleted_through_openai_is_cancelled_and_its_credits_return(sora, alice):
    before = account_for_team(alice.personal_team).available
    video = sora.videos.create(prompt="a kite", **SMALL)
    assert account_for_team(alice.personal_team).available < before
    sora.videos.delete(video.id)
    assert not Job.objects.exists()
    assert account_for_team(alice.personal_team).available == before


def test_an_image_for_a_model_that_takes_none_or_a_broken_image_is_refused(sora):
    with pytest.raises(openai.BadRequestError) as raised:
        sora.videos.create(prompt="a kite", input_reference=("x.png", b"not an image", "image/png"), **SMALL)
    assert raised.value.param == "input_reference" and "could not be read" in raised.value.message


def test_remixing_a_video_that_is_not_finished_is_a_conflict(sora):
    video = sora.videos.create(prompt="a kite", **SMALL)
    with pytest.raises(openai.ConflictError):
        sora.videos.remix(video.id, prompt="a boat")
