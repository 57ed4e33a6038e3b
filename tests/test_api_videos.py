"""REST API v1: create, read, cancel videos and list models, as an API client would."""

import pytest

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing.models import BillingAccount
from generation.models import Job

from .conftest import SMALL_REQUEST, client_for, on_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice, client):
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")

    class Api:
        def get(self, path):
            return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {secret}")

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
    assert body["status"] == "queued" and body["seed"] == 42 and body["model"] == "framecast-tiny"
    assert body["progress"] == {"step": 0, "steps": 4, "percent": 0} and body["content_url"] is None
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
    assert again.json()["error"] == {
        "type": "conflict",
        "message": "The job has already ended (cancelled); there is nothing to cancel.",
    }


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
