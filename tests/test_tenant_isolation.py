"""Charlie (another team) cannot see Alice's job: not its page, its files or its websocket."""

import json

import pytest
from websockets.exceptions import InvalidStatus

from generation.models import Job

from .conftest import websocket_connect


def make_job(owner, **fields) -> Job:
    team = owner.personal_team
    defaults = dict(
        team=team, created_by=owner, prompt="a lighthouse in a storm", seed=7, width=64, height=64,
        num_frames=9, fps=8, steps=4, guidance=5.0, model_name="framecast-tiny", pool="cpu",
    )
    return Job.objects.create(**{**defaults, **fields})


@pytest.fixture
def finished_job(alice):
    from django.core.files.base import ContentFile

    job = make_job(alice)
    job.video.save("v.mp4", ContentFile(b"not really an mp4"), save=False)
    job.poster.save("p.jpg", ContentFile(b"jpeg"), save=False)
    job.state = Job.State.SUCCEEDED
    job.save()
    return job


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["", "video.mp4", "poster.jpg"])
def test_charlie_gets_404_for_alices_job_and_files(finished_job, alice_client, charlie_client, suffix):
    url = f"/jobs/{finished_job.id}/{suffix}"
    assert alice_client.get(url).status_code == 200
    assert charlie_client.get(url).status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(finished_job, client):
    response = client.get(f"/jobs/{finished_job.id}/video.mp4")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_unfinished_job_has_no_video(alice, alice_client):
    job = make_job(alice)
    assert alice_client.get(job.video_url()).status_code == 404


@pytest.mark.django_db
def test_gallery_lists_only_the_teams_own_jobs(alice, charlie, alice_client):
    make_job(alice, prompt="alice's lighthouse")
    make_job(charlie, prompt="charlie's volcano")
    page = alice_client.get("/").content.decode()
    assert "alice&#x27;s lighthouse" in page
    assert "volcano" not in page


def test_websocket_is_for_the_jobs_team_only(alice, charlie, asgi_server):
    from .conftest import client_for

    job = make_job(alice)
    with websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", client_for(alice)) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "queued"}

    for client in (client_for(charlie), None):
        with pytest.raises(InvalidStatus) as refused:
            websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", client)
        assert refused.value.response.status_code == 403


def test_api_clients_subscribe_with_their_key(alice, charlie, asgi_server):
    """API clients send `Authorization: Bearer` and no Origin; the key's team must own the job."""
    from websockets.sync.client import connect

    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    job = make_job(alice)
    _, alice_key = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    _, charlie_key = apikey_create(membership=Membership.objects.get(user=charlie), name="ci")
    url = asgi_server.replace("http://", "ws://") + f"/ws/jobs/{job.id}/"

    with connect(url, additional_headers={"Authorization": f"Bearer {alice_key}"}, proxy=None) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "queued"}
    for headers in ({"Authorization": f"Bearer {charlie_key}"}, {"Authorization": "Bearer fc_nonsense"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, proxy=None)
        assert refused.value.response.status_code == 403
    # Another site's page cannot use a visitor's cookie: a foreign Origin is refused.
    with pytest.raises(InvalidStatus):
        connect(url, origin="http://evil.example", additional_headers={"Authorization": f"Bearer {alice_key}"}, proxy=None)


@pytest.mark.django_db
def test_videos_are_served_in_byte_ranges_for_players_that_seek(finished_job, alice_client):
    url = f"/jobs/{finished_job.id}/video.mp4"
    whole = b"".join(alice_client.get(url).streaming_content)
    assert alice_client.get(url)["Accept-Ranges"] == "bytes"
    part = alice_client.get(url, HTTP_RANGE="bytes=4-7")
    assert part.status_code == 206 and part.content == whole[4:8]
    assert part["Content-Range"] == f"bytes 4-7/{len(whole)}"
    tail = alice_client.get(url, HTTP_RANGE="bytes=-3")
    assert tail.content == whole[-3:]
    assert alice_client.get(url, HTTP_RANGE="bytes=0-").content == whole
    beyond = alice_client.get(url, HTTP_RANGE=f"bytes={len(whole)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(whole)}"
