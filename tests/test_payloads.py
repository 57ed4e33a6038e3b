"""A job's outward shapes come from one module (generation.payloads): the API's video
object, the webhook payload (versioned on every delivery), the studio's live status."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation import payloads, services
from generation.api import VideoSerializer
from generation.models import Job, WebhookDelivery

from .conftest import SMALL_REQUEST

pytestmark = pytest.mark.django_db


def _job(alice, **fields) -> Job:
    params = services.JobParams(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3,
                                width=64, height=64, num_frames=9, fps=8, steps=4, guidance=5.0)
    return services.job_submit(team=alice.personal_team, user=alice, params=params, **fields)


def test_the_api_documents_every_field_the_video_object_has(alice, tiny_default):
    job = _job(alice)
    documented = set(VideoSerializer().fields)
    assert set(payloads.video(job, base_url="http://testserver")) == documented


def test_the_api_and_the_webhook_describe_a_job_alike(alice, alice_client, tiny_default, settings):
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = True
    created = alice_client.post(
        "/api/v1/videos", {**SMALL_REQUEST, "webhook_url": "http://127.0.0.1:9/hook"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    job = Job.objects.get(pk=created.json()["id"])
    services.job_cancel(job.id)
    delivery = WebhookDelivery.objects.get(job=job, event_type="video.cancelled")
    assert delivery.payload_version == payloads.WEBHOOK_PAYLOAD_VERSION == delivery.payload["api_version"]
    api = alice_client.get(f"/api/v1/videos/{job.id}").json()
    assert delivery.payload["data"] == {**api, "content_url": None}


def test_an_ended_job_is_described_without_a_query(alice, tiny_default):
    job = _job(alice)
    services.job_cancel(job.id)
    job.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        payloads.webhook_data(job)
        payloads.live_status(job)
    assert len(queries) == 0, [query["sql"] for query in queries]
