"""The gallery: the team's videos, narrowed by mine/team, status, model and dates; deleting
a video from its page."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from generation.models import Job

from .conftest import client_for, page_text

pytestmark = pytest.mark.django_db


def make_job(team, user, prompt: str, *, state=Job.State.SUCCEEDED, model="framecast-tiny", days_ago: int = 0) -> Job:
    job = Job(team=team, created_by=user, prompt=prompt, seed=1, width=64, height=64, num_frames=9, fps=8, steps=4,
              guidance=5.0, model_name=model, pool="cpu", state=state)
    if state == Job.State.SUCCEEDED:
        job.video.save(f"{prompt}.mp4", ContentFile(b"mp4 bytes"), save=False)
        job.poster.save(f"{prompt}.jpg", ContentFile(b"jpg bytes"), save=False)
    job.save()
    if days_ago:
        Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return job


def shown(response) -> list[str]:
    return [job.prompt for job in response.context["page"].object_list]


@pytest.fixture
def acme_gallery(alice, bob, charlie, acme):
    make_job(acme, alice, "alice sunrise")
    make_job(acme, alice, "alice failed", state=Job.State.FAILED)
    make_job(acme, bob, "bob old", days_ago=10)
    make_job(acme, bob, "bob wan", model="wan2.1-t2v-1.3b")
    make_job(charlie.personal_team, charlie, "charlie secret")
    return acme


def test_the_whole_team_newest_first_and_never_another_teams(alice, acme_gallery):
    response = client_for(alice, acme_gallery).get("/gallery/")
    assert shown(response) == ["bob wan", "alice failed", "alice sunrise", "bob old"]
    assert "charlie secret" not in page_text(response)


def test_mine_shows_only_my_videos(bob, acme_gallery):
    response = client_for(bob, acme_gallery).get("/gallery/", {"scope": "mine"})
    assert shown(response) == ["bob wan", "bob old"]


def test_status_and_model_filters(alice, acme_gallery):
    client = client_for(alice, acme_gallery)
    assert shown(client.get("/gallery/", {"status": "failed"})) == ["alice failed"]
    assert shown(client.get("/gallery/", {"model": "wan2.1-t2v-1.3b"})) == ["bob wan"]
    assert shown(client.get("/gallery/", {"model": "framecast-tiny", "status": "succeeded", "scope": "mine"})) == [
        "alice sunrise"
    ]


def test_date_filters_include_both_whole_days(alice, acme_gallery):
    client = client_for(alice, acme_gallery)
    today = timezone.localdate()
    old_day = today - dt.timedelta(days=10)
    assert shown(client.get("/gallery/", {"created_to": old_day.isoformat()})) == ["bob old"]
    assert shown(client.get("/gallery/", {"created_from": old_day.isoformat(), "created_to": old_day.isoformat()})) == [
        "bob old"
    ]
    assert "bob old" not in shown(client.get("/gallery/", {"created_from": today.isoformat()}))


@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"created_from": "yesterday"}, "created_from", "From: enter a date as YYYY-MM-DD."),
        ({"created_from": "2026-05-02", "created_to": "2026-05-01"}, "created_to", "To: the end date is before the start date."),
        ({"status": "exploded"}, "status", "Select a valid choice"),
    ],
)
def test_a_bad_filter_is_named_and_shows_nothing(alice, acme_gallery, query, field, message):
    response = client_for(alice, acme_gallery).get("/gallery/", query)
    assert response.status_code == 400
    assert field in response.context["filters"].errors
    assert message in page_text(response)
    assert shown(response) == []


def test_succeeded_tiles_carry_poster_and_hover_video(alice, acme_gallery):
    job = Job.objects.get(prompt="alice sunrise")
    html = client_for(alice, acme_gallery).get("/gallery/").content.decode()
    assert f'data-hover-video="{job.video_url()}"' in html
    assert f'src="{job.poster_url()}"' in html


def test_the_gallery_pages(alice):
    team = alice.personal_team
    for n in range(30):
        make_job(team, alice, f"clip {n}", state=Job.State.CANCELLED)
    client = client_for(alice)
    first = client.get("/gallery/", {"status": "cancelled"})
    assert len(shown(first)) == 24 and shown(first)[0] == "clip 29"
    second = client.get("/gallery/", {"status": "cancelled", "page": "2"})
    assert shown(second) == [f"clip {n}" for n in range(5, -1, -1)]
    assert "status=cancelled&amp;page=2" in first.content.decode()


def test_deleting_a_video_removes_it_and_its_files(alice, alice_client, django_capture_on_commit_callbacks):
    job = make_job(alice.personal_team, alice, "to delete")
    storage = job.video.storage
    names = [job.video.name, job.poster.name]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/jobs/{job.id}/delete/")
    assert response["Location"] == "/gallery/"
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not any(storage.exists(name) for name in names)
    assert "Video deleted." in page_text(alice_client.get("/gallery/"))
    assert alice_client.get(job.get_absolute_url()).status_code == 404


def test_a_running_video_cannot_be_deleted(alice, alice_client):
    job = make_job(alice.personal_team, alice, "still running", state=Job.State.RUNNING)
    response = alice_client.post(f"/jobs/{job.id}/delete/", follow=True)
    assert "cancel it before deleting it" in page_text(response)
    assert Job.objects.filter(pk=job.pk).exists()


def test_another_teams_video_cannot_be_deleted(alice, charlie_client):
    job = make_job(alice.personal_team, alice, "alice only")
    assert charlie_client.post(f"/jobs/{job.id}/delete/").status_code == 404
    assert Job.objects.filter(pk=job.pk).exists()
