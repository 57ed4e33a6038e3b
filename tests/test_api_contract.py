"""The API's contract: a served OpenAPI schema, idempotent creation, and `Prefer: wait`."""

import pytest

from accounts.api_keys import apikey_create
from accounts.models import Membership
from generation.models import Job

from .conftest import SMALL_REQUEST, at_once, on_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(alice):
    on_plan(alice.personal_team, "creator")
    return apikey_create(membership=Membership.objects.get(user=alice), name="ci")[1]


def create(client, secret, body, **headers):
    return client.post(
        "/api/v1/videos", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}", **headers
    )


def test_the_schema_is_served_to_anyone_and_lists_every_response(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    create_op = paths["/api/v1/videos"]["post"]
    assert set(create_op["responses"]) >= {"201", "400", "401", "402", "403", "422", "429"}
    assert {p["name"] for p in create_op["parameters"]} >= {"Idempotency-Key", "Prefer"}
    assert set(paths["/api/v1/videos/{job_id}/cancel"]["post"]["responses"]) >= {"200", "404", "409"}
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An API key: `fc_` followed by 50 characters."
    }


def test_the_interactive_docs_need_no_cdn(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "/static/drf_spectacular_sidecar/" in page
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page


def test_a_retry_with_the_same_key_returns_the_first_response_and_creates_nothing(client, secret):
    first = create(client, secret, SMALL_REQUEST, HTTP_IDEMPOTENCY_KEY="order-1")
    again = create(client, secret, SMALL_REQUEST, HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    other = create(client, secret, SMALL_REQUEST, HTTP_IDEMPOTENCY_KEY="order-2")
    assert other.json()["id"] != first.json()["id"] and Job.objects.count() == 2


def test_the_same_key_with_another_body_is_a_422(client, secret):
    create(client, secret, SMALL_REQUEST, HTTP_IDEMPOTENCY_KEY="order-1")
    response = create(client, secret, {**SMALL_REQUEST, "prompt": "something else"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "idempotency_key_reused"
    assert Job.objects.count() == 1


def test_refusals_are_replayed_too(client, secret):
    first = create(client, secret, {**SMALL_REQUEST, "width": 100}, HTTP_IDEMPOTENCY_KEY="bad-1")
    again = create(client, secret, {**SMALL_REQUEST, "width": 100}, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


@pytest.mark.services
def test_two_identical_requests_at_once_create_one_job(transactional_db, client, secret, queue_prefix):
    from django.test import Client

    responses = at_once(lambda: create(Client(), secret, SMALL_REQUEST, HTTP_IDEMPOTENCY_KEY="twin"), 2)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Job.objects.count() == 1


def test_prefer_wait_holds_the_response_then_returns_the_current_state(client, secret):
    response = create(client, secret, SMALL_REQUEST, HTTP_PREFER="wait=1")
    assert response.status_code == 201
    assert response.json()["status"] == "queued"  # no worker in this test: still waiting after 1 s
    assert response.json()["progress"] == {"step": 0, "steps": 4, "percent": 0, "eta_seconds": None}


def test_requests_beyond_the_plans_rate_are_429_with_retry_after(client, secret, alice):
    from billing.models import Plan

    Plan.objects.filter(slug="creator").update(api_requests_per_minute=3, api_videos_per_minute=2)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    statuses = [client.get("/api/v1/models", **auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/models", **auth)
    assert 1 <= int(refused["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["type"] == "rate_limited"
    assert error["message"].startswith("Rate limit reached: 3 requests a minute on the Creator plan. Retry in")


def test_video_submissions_have_their_own_lower_limit(client, secret, alice):
    from billing.models import Plan

    Plan.objects.filter(slug="creator").update(api_requests_per_minute=100, api_videos_per_minute=2)
    statuses = [create(client, secret, SMALL_REQUEST).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert "2 new videos a minute" in create(client, secret, SMALL_REQUEST).json()["error"]["message"]
    assert client.get("/api/v1/videos", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert Job.objects.count() == 2


def test_a_proxys_request_id_is_kept_and_returned(client):
    response = client.get("/api/v1/videos", HTTP_X_REQUEST_ID="edge-1234")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "edge-1234" and response.json()["error"]["request_id"] == "edge-1234"
    odd = client.get("/api/v1/videos", HTTP_X_REQUEST_ID="x" * 500)
    assert odd["X-Request-ID"].startswith("req_")  # not echoed back blindly
