"""REST API v1: create, read, cancel videos and list models, as an API client would."""

import pytest

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing.models import BillingAccount
from generation.models import Job

from .conftest import SMALL_REQUEST, on_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice, client):
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")

    class Api:
        def get(self, path):
            return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {secret}")

        def delete(self, path):
            return client.delete(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {secret}")

        def post(self, path, body=None):
            return client.post(
                f"/api/v1/{path}", body or {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
            )

    return Api()


def test_create_then_read_a_video(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as dispatched:
        created = api.post("videos", {**SMALL_REQUEST, "seed": 42})
    assert created.status_code == 201 and len(dispatched) == 1
    body = created.json()
    assert body["status"] == "queued" and body["seed"] == 42 and body["model"] == "framecast-toy"  # the default
    assert body["progress"] == {"step": 0, "steps": 4, "percent": 0, "eta_seconds": None} and body["content_url"] is None
    assert api.get(f"videos/{body['id']}").json()["id"] == body["id"]
    assert [video["id"] for video in api.get("videos").json()["data"]] == [body["id"]]


def test_cancelling_a_queued_video_returns_its_credits_and_a_second_cancel_is_a_conflict(api, alice):
    video = api.post("videos", SMALL_REQUEST).json()
    account = BillingAccount.objects.get(team=alice.personal_team)
    before = account.available
    cancelled = api.post(f"videos/{video['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    account.refresh_from_db()
    assert account.available == before + video["price_credits"]
    again = api.post(f"videos/{video['id']}/cancel")
    assert again.status_code == 409
    error = again.json()["error"]
    assert (error["type"], error["message"]) == (
        "conflict",
        "The job has already ended (cancelled); there is nothing to cancel.",
    )


def test_the_studio_cancel_button(alice, alice_client):
    alice_client.post("/", SMALL_REQUEST)
    job = Job.objects.get()
    response = alice_client.post(f"/jobs/{job.id}/cancel/", follow=True)
    assert "Job cancelled; its credits are back in your balance." in response.content.decode()
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED


def test_models_lists_what_can_be_generated_with_limits(api):
    models = api.get("models").json()["data"]
    tiny = next(model for model in models if model["id"] == "framecast-tiny")
    assert tiny["width"] == {"min": 32, "max": 256, "multiple_of": 16}
    assert tiny["num_frames"] == {"max": 33, "rule": "4k+1"}
    assert tiny["pool"] == "cpu"
    assert "wan2.1-t2v-1.3b" not in [model["id"] for model in models]  # no weights configured


def test_a_content_url_appears_when_the_video_is_ready(api, alice):
    video = api.post("videos", SMALL_REQUEST).json()
    Job.objects.filter(pk=video["id"]).update(state="succeeded", video="videos/x.mp4")
    body = api.get(f"videos/{video['id']}").json()
    assert body["content_url"] == f"http://testserver/api/v1/videos/{video['id']}/content"
    not_ready = api.post("videos", SMALL_REQUEST).json()
    missing = api.get(f"videos/{not_ready['id']}/content")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "The video is not ready: the job is queued."


def test_listing_pages_with_a_cursor_and_filters(api, alice):
    for _ in range(5):
        api.post("videos", SMALL_REQUEST)
    Job.objects.filter(pk__in=list(Job.objects.values_list("pk", flat=True)[:2])).update(state="cancelled")
    first = api.get("videos?limit=3").json()
    assert len(first["data"]) == 3 and first["next"]
    second = api.get(first["next"].removeprefix("http://testserver/api/v1/")).json()
    assert len(second["data"]) == 2 and second["next"] is None
    assert not {v["id"] for v in first["data"]} & {v["id"] for v in second["data"]}
    assert {v["status"] for v in api.get("videos?status=cancelled").json()["data"]} == {"cancelled"}
    assert len(api.get("videos?status=cancelled").json()["data"]) == 2
    bad = api.get("videos?status=exploded")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    assert api.get("videos?created_after=yesterday").json()["error"]["field"] == "created_after"


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "%00",
        "",
        "bm90IGEgY3Vyc29y",  # "not a cursor"
        "%27%20OR%201%3D1--",  # ' OR 1=1--
        "cD0yMDI2LTEyLTAx%00",  # a real-looking cursor with a NUL after it
        _b64("p=yesterday"),  # a position that is no date-time
        _b64("p=2026-12-01 00:00:00%00"),  # one with a NUL inside
        _b64("o=1&o=2"),
        _b64("r=2"),
        _b64("x=1"),
    ],
)
def test_a_cursor_that_is_not_ours_is_a_404_in_the_error_shape(api, cursor):
    api.post("videos", SMALL_REQUEST)
    response = api.get(f"videos?cursor={cursor}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found" and error["message"] == "Invalid cursor" and error["request_id"]


def test_next_and_previous_cursors_still_page_both_ways(api):
    for _ in range(5):
        api.post("videos", SMALL_REQUEST)
    first = api.get("videos?limit=2").json()
    second = api.get(first["next"].removeprefix("http://testserver/api/v1/")).json()
    third = api.get(second["next"].removeprefix("http://testserver/api/v1/")).json()
    back = api.get(third["previous"].removeprefix("http://testserver/api/v1/")).json()
    assert [len(page["data"]) for page in (first, second, third)] == [2, 2, 1]
    assert [v["id"] for v in back["data"]] == [v["id"] for v in second["data"]]


def test_deleting_a_finished_video_removes_it_and_its_files(api, data_dirs, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile

    video = api.post("videos", SMALL_REQUEST).json()
    running = api.post("videos", SMALL_REQUEST).json()
    job = Job.objects.get(pk=video["id"])
    job.video.save("bye.mp4", ContentFile(b"mp4"), save=False)
    job.state = Job.State.SUCCEEDED
    job.save()
    path = job.video.path
    conflict = api.delete(f"videos/{running['id']}")
    assert conflict.status_code == 409 and "cancel it before deleting it" in conflict.json()["error"]["message"]
    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion commits
        assert api.delete(f"videos/{video['id']}").status_code == 204
    assert api.get(f"videos/{video['id']}").status_code == 404
    import os

    assert not os.path.exists(path)


def test_account_and_usage(api, alice):
    account = api.get("account").json()
    assert account["plan"]["id"] == "creator" and account["plan"]["limits"]["api_access"] is True
    assert account["balance"]["available"] == 1500
    usage = api.get("usage").json()
    assert usage["by_api_key"] == [] and "period_start" in usage


def test_duration_instead_of_frames_and_the_queue_position(api, alice):
    first = api.post("videos", {**SMALL_REQUEST, "num_frames": None, "duration": 2, "fps": 8}).json()
    assert first["num_frames"] == 17  # 2 s at 8 fps, as the model's 4k+1
    second = api.post("videos", SMALL_REQUEST).json()
    assert (first["queue_position"], second["queue_position"]) == (1, 2)
    bad = api.post("videos", {**SMALL_REQUEST, "num_frames": None, "duration": "long"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "duration"
    assert first["progress"]["eta_seconds"] is None


@pytest.mark.parametrize("number", ["9" * 30, "9" * 5000, "²"])
def test_numbers_too_long_to_be_one_are_refused_by_name_not_a_500(api, client, alice, number):
    """`limit` and `Prefer: wait` (native) and the OpenAI list's `limit` take whole numbers;
    a 5,000-digit one is more than Python's int() reads."""
    listed = api.get(f"videos?limit={number}")
    assert listed.status_code == 400 and listed.json()["error"]["field"] == "limit"
    _, secret = apikey_create(membership=Membership.objects.get(user=alice, team=alice.personal_team), name="n")
    sora = client.get("/openai/v1/videos", {"limit": number}, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert sora.status_code == 400 and sora.json()["error"]["param"] == "limit"
    waited = client.post("/api/v1/videos", SMALL_REQUEST, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_PREFER=f"wait={number}")
    assert waited.status_code == 201, waited.content  # not a wait at all: answered at once
