"""API keys: made by admins, shown once, stored only as a hash, revocable, metered per key."""

import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.api_keys import apikey_create
from accounts.models import ApiKey, Membership

from .conftest import SMALL_REQUEST, client_for, on_plan, page_text
from .test_tenant_isolation import make_job

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def new_key(owner, team=None, **kwargs) -> str:
    team = team or owner.personal_team
    _, secret = apikey_create(membership=Membership.objects.get(team=team, user=owner), name="ci", **kwargs)
    return secret


def test_secret_is_shown_once_and_never_stored_logged_or_shown_again(alice, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(alice)
    response = client.post("/team/keys/", {"name": "production server"})
    assert response.status_code == 201
    secret = response.context["new_secret"]
    assert secret.startswith("fc_") and len(secret) > 40
    assert secret in page_text(response)
    assert response["Cache-Control"] == "no-store"

    # The key works, and nothing afterwards shows it.
    api = client_for(alice).__class__()
    listing = api.get("/api/v1/videos", **bearer(secret))
    assert listing.status_code == 200
    later_pages = [client.get("/team/keys/"), listing, api.post("/api/v1/videos", SMALL_REQUEST, content_type="application/json", **bearer(secret))]
    for later in later_pages:
        assert secret not in later.content.decode()
    key = ApiKey.objects.get()
    assert page_text(client.get("/team/keys/")).count(f"fc_{key.prefix}…") == 1

    # Not in any column of any table (sessions included), not in any log record.
    for model in apps.get_models():
        for row in model.objects.values_list():
            assert not any(secret in str(value) or secret[3:] in str(value) for value in row), model
    for session in Session.objects.all():
        assert secret not in str(session.get_decoded())
    assert not any(secret[3:] in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda key: key.__setattr__("revoked_at", timezone.now()), "This API key has been revoked."),
        (lambda key: key.__setattr__("expires_at", timezone.now() - timedelta(seconds=1)), "This API key has expired."),
    ],
    ids=["revoked", "expired"],
)
def test_revoked_and_expired_keys_get_401_json(alice, client, mutate, message):
    secret = new_key(alice)
    key = ApiKey.objects.get()
    mutate(key)
    key.save()
    response = client.get("/api/v1/videos", **bearer(secret))
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["message"]) == ("authentication_failed", message)
    assert error["request_id"] == response["X-Request-ID"] and error["request_id"].startswith("req_")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer fc_0000000000000000000000000000", "Bearer nonsense", "Token abc", "Bearer "],
)
def test_unknown_or_malformed_keys_get_401_json(alice, client, header):
    new_key(alice)
    response = client.get("/api/v1/videos", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_failed"


def test_a_key_with_a_wrong_secret_but_a_real_prefix_is_refused(alice, client):
    secret = new_key(alice)
    tampered = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert client.get("/api/v1/videos", **bearer(tampered)).status_code == 401


def test_no_credentials_get_401(client):
    response = client.get("/api/v1/videos")
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_revoking_from_the_keys_page(alice, client):
    secret = new_key(alice)
    key = ApiKey.objects.get()
    assert client.get("/api/v1/videos", **bearer(secret)).status_code == 200
    client_for(alice).post(f"/team/keys/{key.id}/revoke/")
    assert client.get("/api/v1/videos", **bearer(secret)).status_code == 401


def test_requests_and_video_seconds_are_metered_per_key(alice, client, django_capture_on_commit_callbacks):
    on_plan(alice.personal_team, "creator")  # the Free plan has no API access
    first, second = new_key(alice), new_key(alice)
    for _ in range(3):
        client.get("/api/v1/videos", **bearer(first))
    with django_capture_on_commit_callbacks():
        created = client.post(
            "/api/v1/videos", {**SMALL_REQUEST, "num_frames": 17, "fps": 8}, content_type="application/json", **bearer(second)
        )
    assert created.status_code == 201
    from generation.models import Job

    job = Job.objects.get()
    assert job.api_key.prefix == second[3:11]
    # Finished jobs count towards video-seconds: 17 frames at 8 fps.
    Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED, video="v.mp4")
    keys = {key.prefix: key for key in client_for(alice).get("/team/keys/").context["keys"]}
    assert keys[first[3:11]].request_count == 3 and keys[first[3:11]].video_seconds == 0
    assert keys[second[3:11]].request_count == 1 and keys[second[3:11]].video_seconds == pytest.approx(17 / 8)
    assert keys[first[3:11]].last_used_at is not None


def test_only_admins_and_owners_manage_keys(alice, bob, acme):
    bob_client = client_for(bob, acme)
    assert bob_client.get("/team/keys/").status_code == 403
    assert bob_client.post("/team/keys/", {"name": "sneaky"}).status_code == 403
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": ""}, "Key name is required"),
        ({"name": "x", "expires_in_days": "0"}, "Expiry must be a whole number of days"),
        ({"name": "x", "expires_in_days": "soon"}, "Expiry must be a whole number of days"),
    ],
)
def test_key_form_errors_name_the_problem(alice, data, message):
    response = client_for(alice).post("/team/keys/", data)
    assert response.status_code == 400
    assert message in page_text(response)
    assert not ApiKey.objects.exists()


def test_a_key_acts_for_its_team_only(alice, charlie, client):
    alice_job = make_job(alice)
    charlie_secret = new_key(charlie)
    assert client.get(f"/api/v1/videos/{alice_job.id}", **bearer(charlie_secret)).status_code == 404
    listing = client.get("/api/v1/videos", **bearer(charlie_secret)).json()
    assert listing == {"data": [], "next": None, "previous": None}


def test_api_validation_errors_name_the_field(alice, client):
    response = client.post(
        "/api/v1/videos", {**SMALL_REQUEST, "width": 100}, content_type="application/json", **bearer(new_key(alice))
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and error["field"] == "width"
    assert error["message"] == "Width must be a multiple of 16 pixels (got 100)."
