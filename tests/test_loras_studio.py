"""Team LoRAs in the browser: the LoRAs page (list, upload, delete) and the studio's pickers."""

import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.models import Plan
from generation.models import Job, Lora

from .conftest import client_for, on_plan, page_text
from .loras import lora_bytes, tiny_config

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]

TINY = "framecast-tiny"
STUDIO = {"prompt": "a red ball bouncing", "model": TINY, "aspect_ratio": "custom", "width": "64", "height": "48",
          "num_frames": "9", "fps": "8", "steps": "4", "guidance": "4.5", "seed": "3"}


@pytest.fixture(autouse=True)
def _no_team_files_yet(data_dirs):
    shutil.rmtree(data_dirs["MEDIA_ROOT"] / "teams", ignore_errors=True)


@pytest.fixture
def config(tiny_model):
    return tiny_config(tiny_model)


@pytest.fixture
def team(alice, bob, acme):
    on_plan(acme, "creator")
    return acme


@pytest.fixture
def owner(alice, team):
    return client_for(alice, team)


@pytest.fixture
def member(bob, team):
    return client_for(bob, team)


def upload(client, data, *, filename="ink.safetensors", name="ink", model=TINY):
    return client.post("/loras/", {"name": name, "model": model, "file": SimpleUploadedFile(filename, data)})


def files(data_dirs) -> list:
    return list((data_dirs["MEDIA_ROOT"] / "teams").rglob("*.safetensors"))


def test_an_owner_uploads_on_the_loras_page_and_sees_it_listed(owner, config, data_dirs):
    response = upload(owner, lora_bytes(config))
    assert response.status_code == 302
    page = page_text(owner.get("/loras/"))
    assert "LoRA 'ink' is ready for framecast-tiny videos." in page and "ink" in page
    assert Lora.objects.get().name == "ink" and len(files(data_dirs)) == 1


def test_a_pickle_checkpoint_is_refused_on_the_page_with_the_reason_and_nothing_stored(owner, data_dirs):
    response = upload(owner, b"\x80\x02 pickle", filename="ink.ckpt")
    assert response.status_code == 400
    assert "pickle-based checkpoint, which can run code when loaded" in page_text(response)
    assert not Lora.objects.exists() and files(data_dirs) == []


def test_a_file_over_the_plan_is_stopped_while_read_on_the_page(owner, data_dirs):
    Plan.objects.filter(slug="creator").update(max_lora_mb=1)
    response = upload(owner, b"\0" * (2**20 + 1))
    assert response.status_code == 413 and "larger than 1 MB" in page_text(response)
    assert not Lora.objects.exists() and files(data_dirs) == []


def test_a_member_sees_the_loras_but_may_not_upload_or_delete(owner, member, config):
    upload(owner, lora_bytes(config))
    lora = Lora.objects.get()
    page = page_text(member.get("/loras/"))
    assert "ink" in page and "Owners and admins of the team upload and delete LoRAs" in page
    assert 'id="lora-upload"' not in page
    assert upload(member, lora_bytes(config), name="mine").status_code == 403
    assert member.post(f"/loras/{lora.pk}/delete/").status_code == 403
    assert owner.post(f"/loras/{lora.pk}/delete/").status_code == 302
    assert not Lora.objects.filter(deleted_at__isnull=True).exists()


def test_the_free_plan_page_says_which_plan_has_loras(alice):
    page = page_text(client_for(alice).get("/loras/"))
    assert "The Free plan does not include team LoRAs." in page and 'id="lora-upload"' not in page


@pytest.fixture
def ink(owner, config):
    upload(owner, lora_bytes(config))
    return Lora.objects.get()


def test_the_studio_offers_the_teams_loras_and_makes_a_video_with_one(owner, ink):
    studio = page_text(owner.get("/"))
    assert f'<option value="{ink.pk}" data-model="{TINY}"' in studio.replace("\n              ", " ")
    response = owner.post("/", {**STUDIO, "lora_1": str(ink.pk), "lora_1_scale": "0.8"})
    assert response.status_code == 302, page_text(response)[:2000]
    job = Job.objects.get()
    assert [(entry["id"], entry["scale"]) for entry in job.loras] == [(str(ink.pk), 0.8)]
    assert "ink × 0.8" in page_text(owner.get(f"/jobs/{job.pk}/"))
    # Remix: the studio comes back with the same LoRA picked at the same scale.
    remix = page_text(owner.get(f"/?remix={job.pk}"))
    assert f'value="{ink.pk}" data-model="{TINY}"' in remix and 'value="0.8"' in remix


def test_a_scale_out_of_range_in_the_studio_is_shown_on_its_box_and_makes_no_job(owner, ink):
    response = owner.post("/", {**STUDIO, "lora_2": str(ink.pk), "lora_2_scale": "3"})
    assert response.status_code == 400
    assert "loras[0].scale must be more than 0 and at most 2 (got 3)." in page_text(response)
    assert response.context["form"].errors["lora_2_scale"]
    assert not Job.objects.exists()


def test_the_studio_quote_includes_the_lora_surcharge(owner, ink):
    shape = {**STUDIO, "width": "256", "height": "256", "num_frames": "33", "steps": "50"}
    plain = owner.get("/quote", shape).json()["price_credits"]
    with_ink = owner.get("/quote", {**shape, "lora_1": str(ink.pk)}).json()["price_credits"]
    assert (plain, with_ink) == (7, 8)


def test_an_upload_on_the_free_plan_is_refused_naming_the_plan_that_has_loras(alice, config, data_dirs):
    response = upload(client_for(alice), lora_bytes(config))
    assert response.status_code == 403
    assert "The Free plan does not include team LoRAs; the Creator plan does." in page_text(response)
    assert not Lora.objects.exists() and files(data_dirs) == []
