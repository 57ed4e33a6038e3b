"""The studio form: sizes from aspect ratio and resolution, length in seconds, the plan's
limits greyed out before submitting, remix prefill, live status and cancel from the page."""

import re

import pytest
from django.core.files.base import ContentFile

from generation.models import Job
from generation.services import JobParams, job_submit

from .conftest import on_plan, page_text

# framecast-tiny's figures (sizes, lengths, prices), not the shipped default's, below.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]

STUDIO_REQUEST = {
    "prompt": "a lighthouse in a storm",
    "aspect_ratio": "4:3",
    "resolution": "96",
    "duration": "2",
    "steps": "8",
    "next": "studio",
}


def option(html: str, select_id: str, value: str) -> str:
    """The <option> tag of `value` in the select `select_id`."""
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S).group(0)
    return re.search(rf'<option value="{re.escape(value)}"[^>]*>[^<]*', select, re.S).group(0)


def test_aspect_ratio_resolution_and_seconds_decide_the_frames(alice_client):
    response = alice_client.post("/", STUDIO_REQUEST)
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/?after={job.id}#job-{job.id}", "the studio stays open, the new job in view"
    # ... with the settings kept for the next take, and a new seed.
    form = alice_client.get(response["Location"]).context["form"]
    assert (form["prompt"].value(), form["aspect_ratio"].value(), form["resolution"].value()) == (
        "a lighthouse in a storm", "4:3", 96)
    assert (form["duration"].value(), form["steps"].value(), form["seed"].value()) == (2, 8, None)
    assert (job.width, job.height, job.num_frames, job.fps, job.steps) == (128, 96, 17, 8, 8)

    portrait = alice_client.post("/", {**STUDIO_REQUEST, "aspect_ratio": "9:16", "resolution": "64", "duration": "1"})
    assert portrait.status_code == 302
    job = Job.objects.first()
    assert (job.width, job.height, job.num_frames) == (64, 112, 9)


def test_custom_size_uses_width_and_height(alice_client):
    alice_client.post("/", {**STUDIO_REQUEST, "aspect_ratio": "custom", "width": "80", "height": "48", "duration": "",
                            "num_frames": "13"})
    job = Job.objects.get()
    assert (job.width, job.height, job.num_frames) == (80, 48, 13)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("resolution", "720", "Resolution: choose one of 32p, 64p, 96p, 128p"),
        ("duration", "9", "Duration: Framecast Tiny"),
        ("aspect_ratio", "21:9", "Aspect ratio: Select a valid choice"),
    ],
)
def test_a_bad_choice_is_named_and_nothing_is_queued(alice_client, field, value, message):
    response = alice_client.post("/", {**STUDIO_REQUEST, field: value})
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert message in page_text(response)
    assert Job.objects.count() == 0


def test_the_plans_limits_are_greyed_out_with_the_plan_that_lifts_them(alice, alice_client):
    html = alice_client.get("/").content.decode()
    assert "disabled" in option(html, "id_steps", "40") and "Creator plan" in option(html, "id_steps", "40")
    assert "disabled" not in option(html, "id_steps", "30")
    assert "Greyed-out choices need a larger plan than Free" in page_text(alice_client.get("/"))

    on_plan(alice.personal_team, "pro")
    html = alice_client.get("/").content.decode()
    assert "disabled" not in option(html, "id_steps", "50")
    assert "Greyed-out choices" not in html


def test_a_plan_refusal_names_the_control_the_person_used(alice_client):
    response = alice_client.post("/", {**STUDIO_REQUEST, "steps": "40"})
    assert response.status_code == 403
    assert list(response.context["form"].errors) == ["steps"]
    assert "above the Free plan's limit of 30" in page_text(response)
    assert Job.objects.count() == 0


def test_the_quote_follows_the_studio_controls(alice_client):
    quote = alice_client.get("/quote", {**STUDIO_REQUEST, "prompt": ""}).json()
    assert (quote["width"], quote["height"], quote["num_frames"]) == (128, 96, 17)
    assert quote["price_credits"] >= 1
    bad = alice_client.get("/quote", {**STUDIO_REQUEST, "resolution": "720"})
    assert bad.status_code == 400 and "resolution" in bad.json()["errors"]


def _job(team, user, **fields) -> Job:
    values = dict(team=team, created_by=user, prompt="a cat on a piano", negative_prompt="blurry", seed=424242,
                  width=128, height=96, num_frames=17, fps=8, steps=12, guidance=6.5, model_name="framecast-tiny",
                  pool="cpu", speed="fast")
    values.update(fields)
    return Job.objects.create(**values)


def test_remix_opens_the_studio_with_the_same_settings(alice, alice_client):
    job = _job(alice.personal_team, alice)
    response = alice_client.get(f"/?remix={job.id}")
    form = response.context["form"]
    assert form["prompt"].value() == "a cat on a piano"
    assert form["negative_prompt"].value() == "blurry"
    assert form["seed"].value() == 424242
    assert (form["aspect_ratio"].value(), form["resolution"].value(), form["duration"].value()) == ("4:3", 96, 2)
    assert (form["steps"].value(), form["guidance"].value(), form["speed"].value()) == (12, 6.5, "fast")
    html = response.content.decode()
    assert "selected" in option(html, "id_aspect_ratio", "4:3")
    assert "selected" in option(html, "id_resolution", "96")
    assert "selected" in option(html, "id_steps", "12"), "a step count off the presets is still offered"

    # Submitting the remix unchanged asks for exactly the same video.
    data = {name: form[name].value() for name in ("prompt", "negative_prompt", "model", "seed", "aspect_ratio",
                                                  "resolution", "duration", "fps", "steps", "guidance", "speed")}
    alice_client.post("/", data)
    again = Job.objects.exclude(pk=job.pk).get()
    fields = ("prompt", "negative_prompt", "seed", "width", "height", "num_frames", "fps", "steps", "guidance", "speed")
    assert [getattr(again, name) for name in fields] == [getattr(job, name) for name in fields]


def test_remix_of_an_odd_size_keeps_it_as_a_custom_size(alice, alice_client):
    job = _job(alice.personal_team, alice, width=80, height=48, num_frames=13)
    form = alice_client.get(f"/?remix={job.id}").context["form"]
    assert (form["aspect_ratio"].value(), form["width"].value(), form["height"].value()) == ("custom", 80, 48)
    assert (form["duration"].value(), form["num_frames"].value()) == ("", 13)


def test_remix_of_another_teams_video_is_404(alice, charlie_client):
    job = _job(alice.personal_team, alice)
    assert charlie_client.get(f"/?remix={job.id}").status_code == 404
    assert charlie_client.get("/?remix=not-a-uuid").status_code == 404


def _params(**changes) -> JobParams:
    values = dict(prompt="p", negative_prompt="", model_name="framecast-tiny", seed=None, width=64, height=64,
                  num_frames=9, fps=8, steps=4, guidance=5.0)
    values.update(changes)
    return JobParams(**values)


def test_live_status_gives_queue_positions_of_the_teams_jobs_only(alice, charlie, alice_client, django_capture_on_commit_callbacks):
    on_plan(alice.personal_team, "pro")
    first = job_submit(team=alice.personal_team, user=alice, params=_params(prompt="one"))
    second = job_submit(team=alice.personal_team, user=alice, params=_params(prompt="two"))
    theirs = _job(charlie.personal_team, charlie)
    body = alice_client.get("/jobs/status", {"ids": f"{first.id},{second.id},{theirs.id}"}).json()
    positions = {job["id"]: job["queue_position"] for job in body["jobs"]}
    assert positions == {str(first.id): 1, str(second.id): 2}, "Charlie's job is not reported"

    bad = alice_client.get("/jobs/status", {"ids": "nope"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "ids"


def test_live_cards_show_the_teams_running_jobs_with_their_stored_step(alice, alice_client):
    running = _job(alice.personal_team, alice, state=Job.State.RUNNING, progress_step=5)
    _job(alice.personal_team, alice, state=Job.State.CANCELLED, prompt="an old one")
    html = alice_client.get("/").content.decode()
    card = re.search(rf'<article[^>]*id="job-{running.id}"[^>]*>', html).group(0)
    assert 'data-state="running"' in card and 'data-step="5"' in card and 'data-steps="12"' in card
    assert html.count("data-live-job") == 1, "ended jobs are under recent videos, not live"


def test_cancel_from_a_card_answers_json_and_returns_the_credits(alice, alice_client):
    job = job_submit(team=alice.personal_team, user=alice, params=_params())
    response = alice_client.post(f"/jobs/{job.id}/cancel/", HTTP_ACCEPT="application/json")
    assert response.json()["cancelled"] is True
    assert response.json()["job"]["state"] == "cancelled"
    again = alice_client.post(f"/jobs/{job.id}/cancel/", HTTP_ACCEPT="application/json").json()
    assert again["cancelled"] is False and again["message"] == "The job had already ended."


def test_cancel_without_script_returns_to_the_page_it_came_from_on_this_site_only(alice, alice_client):
    job = job_submit(team=alice.personal_team, user=alice, params=_params())
    assert alice_client.post(f"/jobs/{job.id}/cancel/", {"next": "/gallery/"})["Location"] == "/gallery/"
    other = job_submit(team=alice.personal_team, user=alice, params=_params(prompt="q"))
    response = alice_client.post(f"/jobs/{other.id}/cancel/", {"next": "https://evil.example/"})
    assert response["Location"] == other.get_absolute_url()


def test_a_finished_videos_page_shows_every_parameter(alice, alice_client):
    job = _job(alice.personal_team, alice)
    job.video.save("v.mp4", ContentFile(b"mp4"), save=False)
    job.poster.save("p.jpg", ContentFile(b"jpg"), save=False)
    job.state, job.price_credits = Job.State.SUCCEEDED, 3
    job.save()
    text = page_text(alice_client.get(job.get_absolute_url()))
    for expected in ("a cat on a piano", "blurry", "framecast-tiny", "128×96", "17 frames at 8 fps", "12", "6.5",
                     "Fast", "424242", "3 credits", "Download MP4", "Remix", "Delete video", "Create a public link"):
        assert expected in text, expected



def test_an_unfinished_videos_page_has_its_live_card_and_cancel(alice, alice_client):
    job = job_submit(team=alice.personal_team, user=alice, params=_params())
    html = alice_client.get(job.get_absolute_url()).content.decode()
    assert f'id="job-{job.id}" data-live-job' in html
    assert f'data-live-badge="{job.id}"' in html
    assert f'action="/jobs/{job.id}/cancel/"' in html
    assert "Delete video" not in html and "Create a public link" not in html, "only for ended / finished videos"


def test_the_studio_says_which_words_the_toy_model_understands(alice_client, settings):
    from generation import catalog

    toy = catalog.get_model("framecast-toy")
    assert toy is not None, "the shipped toy model's weights are missing"
    settings.FRAMECAST_DEFAULT_MODEL = "framecast-toy"
    page = page_text(alice_client.get("/"))
    assert toy.description in page and "Other words are ignored." in page
