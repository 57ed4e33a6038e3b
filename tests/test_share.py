"""Public share links: unguessable, show only that video to anyone with the link, and
dead (404) once turned off."""

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from generation.models import Job
from generation.sharing import job_share_enable

from .conftest import client_for, page_text

pytestmark = pytest.mark.django_db


def finished(team, user, prompt="a paper boat on a river") -> Job:
    job = Job(team=team, created_by=user, prompt=prompt, seed=7, width=64, height=48, num_frames=9, fps=8, steps=4,
              guidance=5.0, model_name="framecast-tiny", pool="cpu", state=Job.State.SUCCEEDED)
    job.video.save("shared.mp4", ContentFile(b"0123456789" * 10), save=False)
    job.poster.save("shared.jpg", ContentFile(b"jpeg"), save=False)
    job.save()
    return job


def share(client, job, on: bool = True):
    return client.post(f"/jobs/{job.id}/share/", {"share": "on" if on else "off"})


def link_of(job) -> str:
    job.refresh_from_db()
    return f"/s/{job.share_token}/"


def test_a_shared_video_plays_for_anyone_with_the_link_and_shows_nothing_else(alice, alice_client, acme):
    job = finished(alice.personal_team, alice)
    finished(alice.personal_team, alice, prompt="a private draft")
    assert share(alice_client, job).status_code == 302
    link = link_of(job)

    stranger = Client()
    page = stranger.get(link)
    assert page.status_code == 200
    text = page_text(page)
    assert "a paper boat on a river" in text
    assert "a private draft" not in text and alice.email not in text and alice.personal_team.name not in text
    assert page["X-Robots-Tag"] == "noindex"
    assert str(job.id) not in text, "the page does not reveal the job id"

    video = stranger.get(link + "video.mp4")
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"".join(video.streaming_content) == b"0123456789" * 10
    partial = stranger.get(link + "video.mp4", HTTP_RANGE="bytes=0-9")
    assert partial.status_code == 206 and partial.content == b"0123456789"
    assert stranger.get(link + "poster.jpg").status_code == 200

    # The link opens only the shared video: the team's own URLs still ask for a login.
    assert stranger.get(job.video_url()).status_code == 302


def test_the_link_is_unguessable(alice, alice_client):
    job = finished(alice.personal_team, alice)
    other = finished(alice.personal_team, alice, prompt="another")
    share(alice_client, job)
    share(alice_client, other)
    first, second = link_of(job), link_of(other)
    assert first != second
    token = first.strip("/").split("/")[-1]
    assert len(token) >= 43, "at least 256 bits"
    assert str(job.id) not in first
    assert Client().get("/s/" + token[:-1] + ("A" if token[-1] != "A" else "B") + "/").status_code == 404


def test_turning_sharing_off_makes_the_link_404_and_on_again_makes_a_new_one(alice, alice_client):
    job = finished(alice.personal_team, alice)
    share(alice_client, job)
    old = link_of(job)
    response = share(alice_client, job, on=False)
    assert "Sharing is off" in page_text(alice_client.get(response["Location"]))
    stranger = Client()
    for suffix in ("", "video.mp4", "poster.jpg"):
        assert stranger.get(old + suffix).status_code == 404, suffix

    share(alice_client, job)
    new = link_of(job)
    assert new != old
    assert stranger.get(new).status_code == 200
    assert stranger.get(old).status_code == 404


def test_sharing_twice_keeps_the_same_link(alice, alice_client):
    job = finished(alice.personal_team, alice)
    share(alice_client, job)
    first = link_of(job)
    share(alice_client, job)
    assert link_of(job) == first


def test_an_unfinished_video_cannot_be_shared(alice, alice_client):
    job = Job.objects.create(team=alice.personal_team, created_by=alice, prompt="still going", seed=1, width=64,
                             height=64, num_frames=9, fps=8, steps=4, guidance=5.0, model_name="framecast-tiny",
                             pool="cpu", state=Job.State.RUNNING)
    response = share(alice_client, job)
    assert "Only a finished video can be shared." in page_text(alice_client.get(response["Location"]))
    job.refresh_from_db()
    assert job.share_token == ""


def test_a_deleted_video_s_link_is_dead(alice, alice_client):
    job = finished(alice.personal_team, alice)
    share(alice_client, job)
    link = link_of(job)
    alice_client.post(f"/jobs/{job.id}/delete/")
    assert Client().get(link).status_code == 404


def test_another_team_can_neither_share_nor_unshare(alice, charlie_client):
    job = finished(alice.personal_team, alice)
    job_share_enable(job)
    assert charlie_client.post(f"/jobs/{job.id}/share/", {"share": "off"}).status_code == 404
    job.refresh_from_db()
    assert job.share_token, "still shared"


def test_a_team_member_sees_the_link_on_the_videos_page(alice, bob, acme):
    job = finished(acme, alice)
    job_share_enable(job)
    html = page_text(client_for(bob, acme).get(job.get_absolute_url()))
    assert f"http://testserver/s/{job.share_token}/" in html
    assert "Turn off the link" in html


def test_a_shared_file_is_named_from_the_prompt_not_the_job_id(alice, alice_client):
    """Content-Disposition of the public video and poster names neither the job id nor the
    link's token (a downloaded file gets forwarded); the team's own download still does."""
    job = finished(alice.personal_team, alice, prompt="A paper boat, on a river!")
    share(alice_client, job)
    link = link_of(job)
    stranger = Client()
    for path, name in (("video.mp4?download=1", "framecast-a-paper-boat-on-a-river.mp4"),
                       ("video.mp4", "framecast-a-paper-boat-on-a-river.mp4"),
                       ("poster.jpg", "framecast-a-paper-boat-on-a-river.jpg")):
        disposition = stranger.get(link + path)["Content-Disposition"]
        assert name in disposition
        assert str(job.id) not in disposition and job.share_token not in disposition
    own = alice_client.get(job.video_url() + "?download=1")["Content-Disposition"]
    assert own.startswith("attachment") and str(job.id) in own


def test_a_video_taken_down_after_a_report_cannot_be_shared_again(alice, alice_client):
    from generation.sharing import job_take_down

    job = finished(alice.personal_team, alice)
    share(alice_client, job)
    old = link_of(job)
    job_take_down(job=job)
    assert Client().get(old).status_code == 404

    response = share(alice_client, job)
    page = page_text(alice_client.get(response["Location"]))
    assert "This video was taken down after a report and cannot be shared." in page
    assert 'id="share-on"' not in page, "no share button is offered"
    assert link_of(job) == "/s//", "no new link was made"
    # Turning the (dead) link off and on again does not bring it back either.
    share(alice_client, job, on=False)
    share(alice_client, job)
    assert link_of(job) == "/s//" and Client().get(old).status_code == 404
    # The video itself stays in the team's gallery.
    assert alice_client.get(job.get_absolute_url()).status_code == 200
