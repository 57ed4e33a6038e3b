"""The walking skeleton on real parts: the studio form queues a job, a real Celery worker
process runs the tiny diffusers pipeline, progress streams over a real websocket through
Redis, and the result is an MP4 of the requested shape that only the team can download."""

import json
import time

import pytest

from generation.models import Job
from gpu_workers.encode import probe_mp4

from .conftest import SMALL_REQUEST, websocket_connect

pytestmark = [pytest.mark.services, pytest.mark.slow]


def receive_until_terminal(socket, timeout: float = 120) -> list[dict]:
    received = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = json.loads(socket.recv(timeout=deadline - time.monotonic()))
        received.append(event)
        if event["type"] in {"succeeded", "failed", "cancelled"}:
            return received
    raise AssertionError(f"no terminal event within {timeout}s; got {received}")


def test_prompt_becomes_an_mp4_with_live_progress(alice_client, charlie_client, asgi_server, start_worker):
    response = alice_client.post("/", SMALL_REQUEST)
    assert response.status_code == 302
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert job.state == Job.State.QUEUED

    # Subscribe while the job waits in the queue, then bring up a worker.
    with websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", alice_client) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "queued"}
        start_worker()
        received = receive_until_terminal(socket)

    previews = [event for event in received if event["type"] == "preview"]
    received = [event for event in received if event["type"] != "preview"]
    types = [event["type"] for event in received]
    steps = int(SMALL_REQUEST["steps"])
    assert types == ["started"] + ["step"] * steps + ["encoding", "succeeded"], received
    # At least the first step is previewed (never the last: the video follows).
    assert previews and all(1 <= event["i"] < steps for event in previews)
    assert previews[0]["image"].startswith("data:image/jpeg;base64,")
    step_events = [event for event in received if event["type"] == "step"]
    assert [event["i"] for event in step_events] == list(range(1, steps + 1))
    assert all(event["n"] == steps for event in step_events)
    assert step_events[-1]["eta_seconds"] == 0

    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert job.started_at <= job.encoding_at <= job.finished_at
    assert job.progress_step == steps
    assert job.attempts == 1
    assert job.inference_seconds > 0 and job.encode_seconds > 0
    assert received[-1]["video_url"] == job.video_url()

    video = alice_client.get(received[-1]["video_url"])
    assert video.status_code == 200
    assert video["Content-Type"] == "video/mp4"
    info = probe_mp4(b"".join(video.streaming_content))
    assert (info["frames"], info["width"], info["height"]) == (9, 192, 144)  # 64×48, stored at 3× (upscale_for_display)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["faststart"]

    assert alice_client.get(received[-1]["poster_url"])["Content-Type"] == "image/jpeg"
    assert charlie_client.get(received[-1]["video_url"]).status_code == 404

    # A page opened after the fact shows the player, not a progress bar.
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert f'src="{job.video_url()}"' in page


def test_reconnecting_client_gets_the_stored_state(alice_client, asgi_server, start_worker):
    alice_client.post("/", SMALL_REQUEST)
    job = Job.objects.get()
    start_worker()
    deadline = time.monotonic() + 120
    while Job.objects.get().state != Job.State.SUCCEEDED:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.2)
    with websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", alice_client) as socket:
        event = json.loads(socket.recv(timeout=10))
    assert event["type"] == "succeeded"
    assert event["video_url"] == job.video_url()


def test_an_api_client_waits_for_its_video_and_downloads_it(alice, client, start_worker):
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    from .conftest import on_plan

    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    start_worker()
    response = client.post("/api/v1/videos", SMALL_REQUEST, content_type="application/json", HTTP_PREFER="wait=60", **auth)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "succeeded", body
    assert body["progress"]["percent"] == 100
    content = client.get(body["content_url"].removeprefix("http://testserver"), **auth)
    assert content["Content-Type"] == "video/mp4"
    info = probe_mp4(b"".join(content.streaming_content))
    assert (info["frames"], info["width"], info["height"]) == (9, 192, 144)  # 64×48, stored at 3× (upscale_for_display)
