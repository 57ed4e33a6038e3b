"""/metrics, as Prometheus scrapes it: who may read it, and the figures an operator
graphs and alerts on."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation.models import Job
from generation.services import JobParams, job_submit
from gpu_workers.models import WorkerHeartbeat

from .conftest import on_plan

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple, float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")  # the exposition format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_without_a_token_only_this_machine_may_scrape(client, settings):
    settings.FRAMECAST_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403
    assert "set FRAMECAST_METRICS_TOKEN" in refused.content.decode()


def test_with_a_token_the_scraper_must_send_it(client, settings):
    settings.FRAMECAST_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403  # loopback is not enough now
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="10.0.0.5").status_code == 403
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", REMOTE_ADDR="10.0.0.5")


def test_request_latency_is_counted_by_route_not_by_path(client, alice):
    before = scrape(client)
    key = dict(method="GET", route="/accounts/login/", status="200")
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/login/?next=/x").status_code == 200
    after = scrape(client)
    counted = (value(after, "framecast_http_request_duration_seconds_count", **key) or 0) - (
        value(before, "framecast_http_request_duration_seconds_count", **key) or 0
    )
    assert counted == 2
    assert value(after, "framecast_http_request_duration_seconds_sum", **key) > 0
    # A video's page is one route, whatever the id: the label set stays small.
    client.get("/api/v1/videos/4b8e4e4c-0000-4000-8000-000000000001")
    client.get("/api/v1/videos/4b8e4e4c-0000-4000-8000-000000000002")
    routes = {dict(labels)["route"] for (name, labels) in scrape(client) if name.endswith("_count") and "route" in dict(labels)}
    assert "/api/v1/videos/<uuid:job_id>" in routes
    assert not any("4b8e4e4c" in route for route in routes)


def small(**overrides) -> JobParams:
    base = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=None, fps=8, guidance=5.0,
                width=64, height=64, num_frames=9, steps=4)
    return JobParams(**{**base, **overrides})


def test_jobs_by_state_queue_depth_and_cost_per_pool(client, alice):
    on_plan(alice.personal_team, "pro")
    team = alice.personal_team
    jobs = [job_submit(team=team, user=alice, params=small()) for _ in range(3)]
    empty = scrape(client)
    assert value(empty, "framecast_queue_depth", pool="cpu") == 3
    assert value(empty, "framecast_queue_depth", pool="h100") == 0  # every pool is listed
    assert value(empty, "framecast_jobs", state="queued", pool="cpu") == 3
    assert value(empty, "framecast_jobs", state="succeeded", pool="cpu") == 0
    assert value(empty, "framecast_queue_oldest_seconds", pool="cpu") >= 0

    Job.objects.filter(pk=jobs[0].pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    Job.objects.filter(pk__in=[jobs[1].pk, jobs[2].pk]).update(
        state=Job.State.SUCCEEDED, video="videos/x.mp4", gpu_seconds=30.0, cost_usd=Decimal("0.000417")
    )
    samples = scrape(client)
    assert value(samples, "framecast_queue_depth", pool="cpu") == 1
    assert 300 <= value(samples, "framecast_queue_oldest_seconds", pool="cpu") < 310
    assert value(samples, "framecast_jobs", state="succeeded", pool="cpu") == 2
    assert value(samples, "framecast_gpu_seconds", pool="cpu") == 60.0
    assert value(samples, "framecast_cost_usd", pool="cpu") == pytest.approx(0.000834)


def test_worker_heartbeats_show_who_is_up_busy_or_silent(client, settings):
    settings.FRAMECAST_HEARTBEAT_STALE_SECONDS = 60
    now = timezone.now()
    common = dict(pool="cpu", device="cpu", started_at=now - timedelta(hours=1))
    WorkerHeartbeat.objects.create(hostname="w1@host-a", last_seen_at=now, jobs_done=7, memory_used_mb=512,
                                   current_job_id="4b8e4e4c-0000-4000-8000-000000000001", **common)
    WorkerHeartbeat.objects.create(hostname="w2@host-b", last_seen_at=now - timedelta(seconds=90), **common)
    WorkerHeartbeat.objects.create(hostname="gone@host-c", last_seen_at=now - timedelta(days=3), **common)
    samples = scrape(client)
    a = dict(worker="w1@host-a", pool="cpu", device="cpu")
    b = dict(worker="w2@host-b", pool="cpu", device="cpu")
    assert value(samples, "framecast_worker_up", **a) == 1
    assert value(samples, "framecast_worker_busy", **a) == 1
    assert value(samples, "framecast_worker_jobs_done", **a) == 7
    assert value(samples, "framecast_worker_memory_used_mb", **a) == 512
    assert value(samples, "framecast_worker_up", **b) == 0
    assert value(samples, "framecast_worker_heartbeat_age_seconds", **b) >= 90
    assert not any(dict(labels).get("worker") == "gone@host-c" for _, labels in samples)
