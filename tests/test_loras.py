"""Team LoRAs through the REST API: upload (checked whole before anything is stored), list,
delete, and use on a video; every refusal names its field and writes nothing."""

import hashlib
import json
import shutil
import uuid

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing import pricing
from billing.models import BillingAccount, JobCharge, Plan
from generation.loras import loras_purge_deleted
from generation.models import Job, Lora

from .conftest import client_for, on_plan, page_text
from .loras import lora_bytes, raw_file, tiny_config

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_default")]

TINY = "framecast-tiny"
VIDEO = {"prompt": "a red ball bouncing", "model": TINY, "width": 64, "height": 48, "num_frames": 9, "fps": 8,
         "steps": 4, "guidance": 4.5, "seed": 7}
TOY_CONFIG = {"num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32, "ffn_dim": 256, "freq_dim": 64,
              "text_dim": 64}


class Api:
    def __init__(self, client, secret):
        self.client, self.secret = client, secret

    def _auth(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"}

    def get(self, path):
        return self.client.get(f"/api/v1/{path}", **self._auth())

    def delete(self, path):
        return self.client.delete(f"/api/v1/{path}", **self._auth())

    def post(self, path, body):
        return self.client.post(f"/api/v1/{path}", body, content_type="application/json", **self._auth())

    def upload(self, data: bytes, *, filename="ink.safetensors", name="ink", model=TINY):
        fields = {"name": name, "model": model}
        if data is not None:
            fields["file"] = SimpleUploadedFile(filename, data, content_type="application/octet-stream")
        return self.client.post("/api/v1/loras", {k: v for k, v in fields.items() if v is not None}, **self._auth())


def api_for(user, client):
    _, secret = apikey_create(membership=Membership.objects.get(user=user, team=user.personal_team), name="ci")
    return Api(client, secret)


@pytest.fixture
def config(tiny_model):
    return tiny_config(tiny_model)


@pytest.fixture
def alice_api(alice, client):
    on_plan(alice.personal_team, "creator")
    return api_for(alice, client)


@pytest.fixture
def charlie_api(charlie, client):
    on_plan(charlie.personal_team, "creator")
    return api_for(charlie, client)


@pytest.fixture(autouse=True)
def _no_team_files_yet(data_dirs):
    """The media folder lives for the whole run; each test starts with no LoRA files."""
    shutil.rmtree(data_dirs["MEDIA_ROOT"] / "teams", ignore_errors=True)


def stored_files(data_dirs) -> set[str]:
    root = data_dirs["MEDIA_ROOT"] / "teams"
    return {str(path.relative_to(data_dirs["MEDIA_ROOT"])) for path in root.rglob("*") if path.is_file()}


def error_of(response) -> dict:
    return response.json()["error"]


# --- Upload --------------------------------------------------------------------------------


def test_an_owner_uploads_a_lora_which_is_stored_under_the_team_and_listed(alice, alice_api, config, data_dirs):
    data = lora_bytes(config, rank=4)
    response = alice_api.upload(data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["model"], body["rank"], body["modules"]) == ("ink", TINY, 4, 12)
    assert body["size_bytes"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    lora = Lora.objects.get()
    assert lora.file == f"teams/{alice.personal_team.pk}/loras/{lora.pk}.safetensors"
    assert (data_dirs["MEDIA_ROOT"] / lora.file).read_bytes() == data
    assert [item["id"] for item in alice_api.get("loras").json()["data"]] == [body["id"]]
    assert alice_api.get(f"loras/{body['id']}").json() == body
    assert alice_api.get(f"loras?model={TINY}").json()["data"] and not alice_api.get("loras?model=other").json()["data"]


def test_the_original_wan_layout_with_alphas_is_accepted_too(alice_api, config):
    response = alice_api.upload(lora_bytes(config, rank=2, layout="original", with_alpha=True))
    assert response.status_code == 201, response.content
    assert response.json()["rank"] == 2


def _truncated(config):
    data = lora_bytes(config)
    return data[: len(data) - 10]


def _overlapping(config):
    tensor = {"dtype": "F16", "shape": [4, 24], "data_offsets": [0, 192]}
    header = {"transformer.blocks.0.attn1.to_q.lora_A.weight": tensor,
              "transformer.blocks.0.attn1.to_q.lora_B.weight": {"dtype": "F16", "shape": [24, 4], "data_offsets": [96, 288]}}
    return raw_file(header, b"\0" * 288)


def _non_utf8_metadata(config):
    return raw_file(b'{"__metadata__": {"name": "\xc3\x28"}}')


def _dtype(config, dtype):
    return lora_bytes(config, dtype=dtype)


UPLOAD_REFUSALS = [
    # (case, make bytes, file name, status, field, message part)
    ("ckpt", lambda c: b"PK\x03\x04 pickle", "ink.ckpt", 400, "file", "pickle-based checkpoint, which can run code"),
    ("pt", lambda c: b"\x80\x02 pickle", "ink.pt", 400, "file", "pickle-based checkpoint"),
    ("bin", lambda c: b"\x80\x02 pickle", "pytorch_lora_weights.bin", 400, "file", "pickle-based checkpoint"),
    ("other-suffix", lambda c: lora_bytes(c), "ink.txt", 400, "file", "only .safetensors"),
    ("zero-bytes", lambda c: b"", "ink.safetensors", 400, "file", "The file is empty."),
    ("claims-2GB", lambda c: raw_file({}, length=2 * 2**30), "ink.safetensors", 400, "file", "claims 2147483648 bytes"),
    ("truncated", _truncated, "ink.safetensors", 400, "file", "(truncated?)"),
    ("overlapping", _overlapping, "ink.safetensors", 400, "file", "overlaps the tensor before it"),
    ("non-utf8-metadata", _non_utf8_metadata, "ink.safetensors", 400, "file", "not UTF-8"),
    ("I64", lambda c: _dtype(c, np.int64), "ink.safetensors", 400, "file", "is I64; LoRA weights must be F16, BF16 or F32"),
    ("F64", lambda c: _dtype(c, np.float64), "ink.safetensors", 400, "file", "is F64"),
    ("another-model", lambda c: lora_bytes(TOY_CONFIG), "ink.safetensors", 400, "file", "is for another model"),
    ("not-a-lora", lambda c: raw_file({"weight": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0"),
     "ink.safetensors", 400, "file", "is not a LoRA weight"),
    ("rank-over-plan", lambda c: lora_bytes(c, rank=65), "ink.safetensors", 403, "file",
     "rank 65; the Creator plan takes at most 64"),
]


@pytest.mark.parametrize(("case", "make", "filename", "status", "field", "message"), UPLOAD_REFUSALS,
                         ids=[row[0] for row in UPLOAD_REFUSALS])
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_stored(
    alice_api, config, data_dirs, case, make, filename, status, field, message
):
    before = stored_files(data_dirs)
    response = alice_api.upload(make(config), filename=filename)
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["field"] == field and message in error["message"], error
    assert Lora.objects.count() == 0 and stored_files(data_dirs) == before


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "Name is required"),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"model": None}, "model", "Model is required"),
        ({"model": "wan9-imaginary"}, "model", "is not available"),
        ({"data": None}, "file", "File is required"),
    ],
)
def test_a_missing_name_model_or_file_is_refused_by_name(alice_api, config, data_dirs, fields, field, message):
    data = fields.pop("data", lora_bytes(config))
    response = alice_api.upload(data, **fields)
    assert response.status_code == 400 and error_of(response)["field"] == field
    assert message in error_of(response)["message"]
    assert Lora.objects.count() == 0 and stored_files(data_dirs) == set()


def test_a_second_lora_of_the_same_name_is_refused_but_the_name_is_free_again_once_deleted(alice_api, config):
    first = alice_api.upload(lora_bytes(config)).json()
    again = alice_api.upload(lora_bytes(config, seed=1))
    assert again.status_code == 400 and error_of(again)["field"] == "name"
    assert "already has a LoRA called 'ink'" in error_of(again)["message"]
    assert alice_api.delete(f"loras/{first['id']}").status_code == 204
    assert alice_api.upload(lora_bytes(config, seed=1)).status_code == 201


def test_the_free_plan_has_no_loras_and_names_the_plan_that_does(alice, client, config, data_dirs):
    api = api_for(alice, client)
    on_plan(alice.personal_team, "free")
    Plan.objects.filter(slug="free").update(api_access=True)
    response = api.upload(lora_bytes(config))
    assert response.status_code == 403
    error = error_of(response)
    assert error["type"] == "plan_no_loras" and error["field"] == "file"
    assert "The Free plan does not include team LoRAs; the Creator plan does." in error["message"]
    assert Lora.objects.count() == 0 and stored_files(data_dirs) == set()


def test_the_plan_bounds_how_many_loras_a_team_keeps(alice_api, config, data_dirs):
    Plan.objects.filter(slug="creator").update(max_loras=2)
    for number in range(2):
        assert alice_api.upload(lora_bytes(config, seed=number), name=f"ink {number}").status_code == 201
    before = stored_files(data_dirs)
    third = alice_api.upload(lora_bytes(config, seed=3), name="ink 3")
    assert third.status_code == 403 and error_of(third)["type"] == "plan_limit_loras"
    assert "keeps 2 LoRAs, the most the Creator plan allows" in error_of(third)["message"]
    assert Lora.objects.count() == 2 and stored_files(data_dirs) == before


def test_a_file_over_the_plans_size_is_a_413_naming_file_stopped_while_it_is_read(alice_api, config, data_dirs):
    Plan.objects.filter(slug="creator").update(max_lora_mb=1)
    response = alice_api.upload(b"\0" * (2**20 + 1))  # refused by its size, whatever it holds
    assert response.status_code == 413, response.content
    error = error_of(response)
    assert error["field"] == "file" and "larger than 1 MB, the most your plan stores" in error["message"]
    assert Lora.objects.count() == 0 and stored_files(data_dirs) == set()


def test_members_list_loras_but_only_owners_and_admins_upload_and_delete(alice, bob, acme, config, client):
    on_plan(acme, "creator")
    owner, member = client_for(alice, acme), client_for(bob, acme)
    upload = {"name": "ink", "model": TINY}
    refused = member.post("/api/v1/loras", {**upload, "file": SimpleUploadedFile("ink.safetensors", lora_bytes(config))})
    assert refused.status_code == 403 and "may not upload or delete the team's LoRAs" in error_of(refused)["message"]
    created = owner.post("/api/v1/loras", {**upload, "file": SimpleUploadedFile("ink.safetensors", lora_bytes(config))})
    assert created.status_code == 201
    lora_id = created.json()["id"]
    assert [item["id"] for item in member.get("/api/v1/loras").json()["data"]] == [lora_id]
    assert member.delete(f"/api/v1/loras/{lora_id}").status_code == 403
    Membership.objects.filter(user=bob, team=acme).update(role=Membership.Role.ADMIN)
    assert member.delete(f"/api/v1/loras/{lora_id}").status_code == 204


# --- Another team's LoRA ----------------------------------------------------------------------


def test_another_teams_lora_is_a_404_exactly_like_a_missing_one(alice_api, charlie_api, config, data_dirs):
    charlies = charlie_api.upload(lora_bytes(config), name="charlie's").json()["id"]
    missing = str(uuid.uuid4())
    for path in ("loras/{}",):
        theirs, nobodys = alice_api.get(path.format(charlies)), alice_api.get(path.format(missing))
        assert theirs.status_code == nobodys.status_code == 404
        assert error_of(theirs)["message"].replace(charlies, "ID") == error_of(nobodys)["message"].replace(missing, "ID")
    assert alice_api.delete(f"loras/{charlies}").status_code == 404
    assert Lora.objects.filter(pk=charlies, deleted_at__isnull=True).exists()
    assert alice_api.get("loras").json()["data"] == []

    held = BillingAccount.objects.get(team__personal_owner__email="alice@example.com").held_credits
    answers = [alice_api.post("videos", {**VIDEO, "loras": [{"id": lora_id, "scale": 1.0}]}) for lora_id in (charlies, missing)]
    assert [answer.status_code for answer in answers] == [404, 404]
    bodies = [error_of(answer) for answer in answers]
    assert [body["field"] for body in bodies] == ["loras[0].id", "loras[0].id"]
    assert bodies[0]["message"].replace(charlies, "ID") == bodies[1]["message"].replace(missing, "ID")
    assert Job.objects.count() == 0 and JobCharge.objects.count() == 0
    assert BillingAccount.objects.get(team__personal_owner__email="alice@example.com").held_credits == held


# --- A video with LoRAs ---------------------------------------------------------------------------


@pytest.fixture
def ink(alice_api, config):
    return alice_api.upload(lora_bytes(config), name="ink").json()


def test_each_lora_adds_ten_percent_to_the_price():
    reference = dict(credit_factor=1.0, width=832, height=480, num_frames=81, steps=50)
    assert [pricing.price_credits(**reference, loras=count) for count in (0, 1, 2, 3)] == [100, 110, 120, 130]


def test_a_video_records_its_loras_shows_them_and_costs_the_surcharge(alice_api, ink, alice):
    larger = {**VIDEO, "width": 256, "height": 256, "num_frames": 33, "steps": 50}
    plain = alice_api.post("videos", {**larger, "seed": 1}).json()
    response = alice_api.post("videos", {**larger, "loras": [{"id": ink["id"], "scale": 0.8}]})
    assert response.status_code == 201, response.content
    video = response.json()
    assert video["loras"] == [{"id": ink["id"], "name": "ink", "scale": 0.8}] and plain["loras"] == []
    job = Job.objects.get(pk=video["id"])
    assert job.loras == [{"id": ink["id"], "name": "ink", "scale": 0.8, "file": Lora.objects.get().file,
                          "sha256": ink["sha256"]}]
    shape = dict(credit_factor=1.0, width=256, height=256, num_frames=33, steps=50)
    assert (plain["price_credits"], video["price_credits"]) == (7, 8) == (
        pricing.price_credits(**shape), pricing.price_credits(**shape, loras=1))
    page = client_for(alice).get(f"/jobs/{video['id']}/")
    assert "ink × 0.8" in page_text(page)


def test_the_scale_defaults_to_one(alice_api, ink):
    video = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"]}]}).json()
    assert video["loras"][0]["scale"] == 1.0


def _other_model_lora(alice_api, config):
    # The same shapes registered for another model: a tiny job may not take it.
    lora = Lora.objects.get(pk=alice_api.upload(lora_bytes(config), name="other").json()["id"])
    Lora.objects.filter(pk=lora.pk).update(model_name="framecast-toy")
    return str(lora.pk)


JOB_REFUSALS = [
    ("too-many", lambda ink, other: [{"id": ink}] * 4, 400, "loras", "at most 3 LoRAs (got 4)"),
    ("not-a-list", lambda ink, other: {"id": ink}, 400, "loras", "must be a list"),
    ("not-json", lambda ink, other: "[{", 400, "loras", "must be a JSON list"),
    ("entry-not-object", lambda ink, other: [ink], 400, "loras[0]", "must be an object"),
    ("unknown-key", lambda ink, other: [{"id": ink, "weight": 1}], 400, "loras[0].weight", "is not a LoRA field"),
    ("no-id", lambda ink, other: [{"scale": 1}], 400, "loras[0].id", "is required"),
    ("scale-zero", lambda ink, other: [{"id": ink, "scale": 0}], 400, "loras[0].scale", "more than 0 and at most 2 (got 0)"),
    ("scale-negative", lambda ink, other: [{"id": ink, "scale": -1}], 400, "loras[0].scale", "more than 0"),
    ("scale-too-big", lambda ink, other: [{"id": ink, "scale": 2.5}], 400, "loras[0].scale", "at most 2 (got 2.5)"),
    ("scale-text", lambda ink, other: [{"id": ink, "scale": "lots"}], 400, "loras[0].scale", "must be a number"),
    ("scale-bool", lambda ink, other: [{"id": ink, "scale": True}], 400, "loras[0].scale", "must be a number"),
    ("twice", lambda ink, other: [{"id": ink}, {"id": ink, "scale": 0.5}], 400, "loras[1].id", "asked for twice"),
    ("another-model", lambda ink, other: [{"id": other}], 400, "loras[0].id", "is for framecast-toy, not framecast-tiny"),
    ("unknown-id", lambda ink, other: [{"id": str(uuid.uuid4())}], 404, "loras[0].id", "the team has no LoRA"),
    ("malformed-id", lambda ink, other: [{"id": "ink"}], 404, "loras[0].id", "the team has no LoRA"),
    ("second-unknown", lambda ink, other: [{"id": ink}, {"id": str(uuid.uuid4())}], 404, "loras[1].id", "no LoRA"),
]


@pytest.mark.parametrize(("case", "make", "status", "field", "message"), JOB_REFUSALS, ids=[row[0] for row in JOB_REFUSALS])
def test_bad_loras_on_a_video_are_refused_by_field_with_no_job_and_no_hold(
    alice, alice_api, ink, config, case, make, status, field, message
):
    other = _other_model_lora(alice_api, config)
    account = BillingAccount.objects.get(team=alice.personal_team)
    response = alice_api.post("videos", {**VIDEO, "loras": make(ink["id"], other)})
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["field"] == field and message in error["message"], error
    assert Job.objects.count() == 0 and JobCharge.objects.count() == 0
    account.refresh_from_db()
    assert account.held_credits == 0


def test_a_deleted_lora_cannot_be_asked_for(alice_api, ink):
    assert alice_api.delete(f"loras/{ink['id']}").status_code == 204
    response = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"]}]})
    assert response.status_code == 404 and Job.objects.count() == 0


def test_a_team_whose_plan_dropped_loras_cannot_use_them(alice, alice_api, ink):
    Plan.objects.filter(slug="creator").update(max_loras=0)
    response = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"]}]})
    assert response.status_code == 403 and error_of(response)["field"] == "loras"
    assert Job.objects.count() == 0


# --- The result cache ------------------------------------------------------------------------------


def _finish(video_id):
    """Mark a job succeeded with files, as a worker would have left it."""
    from generation.services import job_claim_next, job_start_encoding, job_succeed

    job = job_claim_next("cpu", worker="w1")
    assert str(job.pk) == video_id
    job = job_start_encoding(job, inference_seconds=0.1)
    job_succeed(job, video=b"mp4", poster=b"jpg", encode_seconds=0.1)


def test_the_same_lora_and_scale_reuse_a_video_and_another_scale_does_not(alice_api, ink, config):
    with_ink = {**VIDEO, "loras": [{"id": ink["id"], "scale": 0.8}]}
    first = alice_api.post("videos", with_ink).json()
    _finish(first["id"])
    again = alice_api.post("videos", with_ink).json()
    assert again["status"] == "succeeded" and again["price_credits"] == 0
    assert Job.objects.get(pk=again["id"]).reused_from_id == uuid.UUID(first["id"])

    rescaled = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"], "scale": 0.5}]}).json()
    plain = alice_api.post("videos", VIDEO).json()
    assert rescaled["status"] == plain["status"] == "queued"
    # The same file uploaded again under another name decides the frames alike.
    twin = alice_api.upload(lora_bytes(config), name="ink again").json()
    assert twin["sha256"] == ink["sha256"]
    renamed = alice_api.post("videos", {**VIDEO, "loras": [{"id": twin["id"], "scale": 0.8}]}).json()
    assert renamed["status"] == "succeeded" and renamed["loras"][0]["name"] == "ink again"


# --- Deleting ---------------------------------------------------------------------------------------


def test_deleting_a_lora_a_queued_video_needs_keeps_its_file_until_that_video_ends(
    alice_api, ink, data_dirs, django_capture_on_commit_callbacks
):
    lora = Lora.objects.get()
    video = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"]}]}).json()
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_api.delete(f"loras/{ink['id']}").status_code == 204
    assert alice_api.get(f"loras/{ink['id']}").status_code == 404 and alice_api.get("loras").json()["data"] == []
    assert (data_dirs["MEDIA_ROOT"] / lora.file).is_file(), "the queued video still needs it"
    assert alice_api.post(f"videos/{video['id']}/cancel", {}).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert loras_purge_deleted() == 1
    assert not Lora.objects.exists() and stored_files(data_dirs) == set()
    assert Job.objects.get(pk=video["id"]).loras[0]["name"] == "ink", "the job keeps its record"


def test_deleting_an_unused_lora_removes_its_file_at_once(alice_api, ink, data_dirs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_api.delete(f"loras/{ink['id']}").status_code == 204
    assert not Lora.objects.exists() and stored_files(data_dirs) == set()


# --- The OpenAI layer -------------------------------------------------------------------------------


def test_the_openai_layer_takes_loras_as_an_extra_field_in_json_and_in_multipart(alice_api, ink):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {alice_api.secret}"}
    body = {"prompt": "a red ball", "model": TINY, "size": "64x48", "seconds": "1"}
    created = alice_api.client.post("/openai/v1/videos", {**body, "loras": [{"id": ink["id"], "scale": 0.7}]},
                                    content_type="application/json", **headers)
    assert created.status_code == 200, created.content
    job = Job.objects.get()
    assert [(entry["name"], entry["scale"]) for entry in job.loras] == [("ink", 0.7)]
    multipart = alice_api.client.post("/openai/v1/videos", {**body, "loras": json.dumps([{"id": ink["id"]}])}, **headers)
    assert multipart.status_code == 200, multipart.content
    assert Job.objects.count() == 2

    bad = alice_api.client.post("/openai/v1/videos", {**body, "loras": [{"id": ink["id"], "scale": 3}]},
                                content_type="application/json", **headers)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "loras[0].scale"
    missing = alice_api.client.post("/openai/v1/videos", {**body, "loras": [{"id": str(uuid.uuid4())}]},
                                    content_type="application/json", **headers)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "loras[0].id"
    assert Job.objects.count() == 2


def test_the_purge_of_deleted_loras_is_on_the_beat_schedule():
    from config.celery_app import app
    from generation.tasks import purge_deleted_loras

    assert app.conf.beat_schedule["generation.purge_deleted_loras"]["task"] == purge_deleted_loras.name


def test_a_remix_keeps_the_videos_loras_unless_one_was_deleted(alice_api, ink):
    first = alice_api.post("videos", {**VIDEO, "loras": [{"id": ink["id"], "scale": 0.6}]}).json()
    _finish(first["id"])
    remix = alice_api.post(f"videos/{first['id']}/remix", {"prompt": "a blue ball"})
    assert remix.status_code == 201, remix.content
    assert remix.json()["loras"] == [{"id": ink["id"], "name": "ink", "scale": 0.6}]
    alice_api.delete(f"loras/{ink['id']}")
    again = alice_api.post(f"videos/{first['id']}/remix", {"prompt": "a green ball"})
    assert again.status_code == 409 and error_of(again)["type"] == "lora_deleted"
    assert "made with the LoRA 'ink', which has been deleted" in error_of(again)["message"]


def test_deleting_a_team_removes_its_lora_files(alice, acme, config, data_dirs, django_capture_on_commit_callbacks):
    from accounts.teams import team_delete

    on_plan(acme, "creator")
    owner = client_for(alice, acme)
    response = owner.post("/api/v1/loras", {"name": "ink", "model": TINY,
                                            "file": SimpleUploadedFile("ink.safetensors", lora_bytes(config))})
    assert response.status_code == 201 and stored_files(data_dirs)
    with django_capture_on_commit_callbacks(execute=True):
        team_delete(membership=Membership.objects.get(user=alice, team=acme))
    assert not Lora.objects.exists() and stored_files(data_dirs) == set()


def test_a_file_spooled_to_disk_by_django_is_checked_and_stored_the_same(alice_api, config, data_dirs, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # every upload goes through a temporary file
    data = lora_bytes(config, rank=8, dtype=np.float32)
    assert len(data) > 1024
    response = alice_api.upload(data)
    assert response.status_code == 201, response.content
    assert (data_dirs["MEDIA_ROOT"] / Lora.objects.get().file).read_bytes() == data
    refused = alice_api.upload(data[:-4], name="cut")
    assert refused.status_code == 400 and "(truncated?)" in error_of(refused)["message"]
    assert Lora.objects.count() == 1 and len(stored_files(data_dirs)) == 1


@pytest.mark.services
def test_two_uploads_at_once_past_the_count_leave_one_lora_and_one_file(alice, config, data_dirs, transactional_db):
    from generation.loras import LoraPlanLimit, lora_create

    from .conftest import at_once

    on_plan(alice.personal_team, "creator")
    Plan.objects.filter(slug="creator").update(max_loras=1)
    names = iter(["ink a", "ink b"])

    def attempt():
        name = next(names)
        upload = SimpleUploadedFile(f"{name}.safetensors", lora_bytes(config, seed=len(name)))
        return lora_create(team=alice.personal_team, user=alice, name=name, model_name=TINY, upload=upload)

    outcomes = at_once(attempt, 2)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Lora", LoraPlanLimit.__name__]
    assert Lora.objects.count() == 1 and stored_files(data_dirs) == {Lora.objects.get().file}


def test_the_account_endpoint_states_the_plans_lora_limits(alice_api):
    limits = alice_api.get("account").json()["plan"]["limits"]
    assert (limits["max_loras"], limits["max_lora_rank"], limits["max_lora_mb"]) == (3, 64, 512)
