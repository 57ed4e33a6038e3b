"""Scaling signals: the framecast_pool_* gauges, the desired worker count's formula, and
GET /ops/scaling/<pool> as an autoscaler reads it."""

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job
from generation.pools import Pool, get_pool
from gpu_workers.models import WorkerHeartbeat
from ops.scaling import PoolSignals, desired_workers, pool_scaling, pool_signals

from .test_metrics import scrape, value

S = Job.State
POOL = Pool(name="h100", gpu="H100", price_per_gpu_hour=2.69, models=("m",), min_workers=1, max_workers=10,
            drain_seconds=300)


def signals(**fields) -> PoolSignals:
    base = dict(pool="h100", queued=0, throttled=0, running=0, warm_workers=0, busy_workers=0,
                oldest_queued_seconds=0, backlog_gpu_seconds=0)
    return PoolSignals(**{**base, **fields})


def test_an_idle_pool_keeps_its_warm_floor_and_may_go_to_zero():
    assert desired_workers(signals(), POOL) == 1
    assert desired_workers(signals(), dataclasses.replace(POOL, min_workers=0)) == 0


def test_running_jobs_keep_their_workers_and_the_backlog_adds_enough_to_drain_it_in_time():
    # 4 running; 3000 GPU-seconds queued over 20 jobs, to drain in 300 s: 10 more workers.
    assert desired_workers(signals(running=4, queued=20, backlog_gpu_seconds=3000), dataclasses.replace(POOL, max_workers=64)) == 14
    assert desired_workers(signals(running=4, queued=20, backlog_gpu_seconds=3001), dataclasses.replace(POOL, max_workers=64)) == 15


def test_never_more_workers_than_jobs_to_run_never_above_the_ceiling_and_one_for_any_queued_job():
    assert desired_workers(signals(running=1, queued=2, backlog_gpu_seconds=100_000), POOL) == 3  # one per job
    assert desired_workers(signals(running=8, queued=50, backlog_gpu_seconds=100_000), POOL) == 10  # max_workers
    assert desired_workers(signals(queued=1, backlog_gpu_seconds=0.5), dataclasses.replace(POOL, min_workers=0)) == 1


def test_the_shipped_pools_declare_their_bounds():
    for name in ("cpu", "h100"):
        pool = get_pool(name)
        assert 0 <= pool.min_workers <= pool.max_workers and pool.max_workers >= 1


def test_a_pool_whose_floor_is_above_its_ceiling_is_refused():
    with pytest.raises(ValueError, match="min_workers"):
        Pool(name="x", gpu="g", price_per_gpu_hour=1, models=(), min_workers=3, max_workers=2)


# --- From the database ----------------------------------------------------------------------


def job(team, *, state, model="framecast-tiny", credits=10, **fields) -> Job:
    return Job.objects.create(
        team=team, prompt="p", seed=1, width=64, height=64, num_frames=9, fps=8, steps=4, guidance=5.0,
        model_name=model, pool="cpu", state=state, price_credits=credits,
        video="jobs/x/video.mp4" if state == S.SUCCEEDED else "", **fields,
    )


@pytest.fixture
def busy_cpu_pool(alice):
    """The cpu pool with 3 queued jobs (10 credits each; the oldest queued 2 minutes ago),
    one throttled, two running; two finished jobs that took 20 s per 10 credits (2 s per
    credit); workers: one idle, one busy, one silent (lost) and one still loading."""
    team, now = alice.personal_team, timezone.now()
    for minutes in (2, 1, 0):
        job(team, state=S.QUEUED, queued_at=now - timedelta(minutes=minutes))
    job(team, state=S.THROTTLED)
    running = [job(team, state=S.RUNNING, started_at=now - timedelta(seconds=5)) for _ in range(2)]
    for _ in range(2):
        job(team, state=S.SUCCEEDED, started_at=now - timedelta(seconds=60), encoding_at=now - timedelta(seconds=40))
    beat = dict(pool="cpu", device="cpu", started_at=now - timedelta(hours=1))
    WorkerHeartbeat.objects.create(hostname="idle@a", last_seen_at=now, **beat)
    WorkerHeartbeat.objects.create(hostname="busy@b", last_seen_at=now, current_job_id=running[0].id, **beat)
    WorkerHeartbeat.objects.create(hostname="lost@c", last_seen_at=now - timedelta(minutes=10), **beat)
    WorkerHeartbeat.objects.create(hostname="other@d", last_seen_at=now, **{**beat, "pool": "h100"})
    if any(field.name == "phase" for field in WorkerHeartbeat._meta.get_fields()):  # workers that warm up
        WorkerHeartbeat.objects.create(hostname="loading@e", last_seen_at=now, phase="warming", **beat)
    return get_pool("cpu")


@pytest.mark.django_db
def test_signals_count_the_pools_jobs_and_workers_and_price_the_backlog_from_recent_durations(busy_cpu_pool):
    seen = pool_signals(busy_cpu_pool)
    assert (seen.queued, seen.throttled, seen.running) == (3, 1, 2)
    assert (seen.warm_workers, seen.busy_workers) == (2, 1)
    assert seen.oldest_queued_seconds == pytest.approx(120, abs=5)
    assert seen.backlog_gpu_seconds == pytest.approx(3 * 10 * 2.0)  # 30 credits at 2 s per credit


@pytest.mark.django_db
def test_without_recent_jobs_the_backlog_uses_the_pools_declared_rate(alice):
    job(alice.personal_team, state=S.QUEUED, credits=40, queued_at=timezone.now())
    pool = get_pool("cpu")
    assert pool_signals(pool).backlog_gpu_seconds == pytest.approx(40 * pool.seconds_per_credit)


@pytest.mark.django_db
def test_the_gauges_are_on_metrics_per_pool(client, busy_cpu_pool):
    samples = scrape(client)
    expected = {
        "framecast_pool_queued_jobs": 3, "framecast_pool_throttled_jobs": 1, "framecast_pool_running_jobs": 2,
        "framecast_pool_warm_workers": 2, "framecast_pool_busy_workers": 1, "framecast_pool_backlog_gpu_seconds": 60,
    }
    for name, figure in expected.items():
        assert value(samples, name, pool="cpu") == pytest.approx(figure), name
    assert value(samples, "framecast_pool_oldest_queued_seconds", pool="cpu") == pytest.approx(120, abs=5)
    assert value(samples, "framecast_pool_queued_jobs", pool="h100") == 0
    # 2 running + ceil(60 s of backlog / 60 s drain) = 3, within the cpu pool's 1..4.
    assert value(samples, "framecast_pool_desired_workers", pool="cpu") == 3
    assert value(samples, "framecast_pool_desired_workers", pool="h100") == get_pool("h100").min_workers


# --- GET /ops/scaling/<pool> ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_endpoint_answers_the_desired_count_with_its_signals(client, settings, busy_cpu_pool):
    settings.FRAMECAST_SCALING_TOKEN = "scale-me"
    response = client.get("/ops/scaling/cpu", HTTP_AUTHORIZATION="Bearer scale-me")
    assert response.status_code == 200
    body = response.json()
    assert body == pool_scaling(busy_cpu_pool) | {"signals": body["signals"]}
    assert (body["desired_workers"], body["min_workers"], body["max_workers"]) == (3, 1, 4)
    assert body["signals"]["queued"] == 3 and body["signals"]["backlog_gpu_seconds"] == pytest.approx(60)


@pytest.mark.django_db
def test_the_endpoint_needs_the_token(client, settings):
    settings.FRAMECAST_SCALING_TOKEN = ""
    off = client.get("/ops/scaling/cpu", HTTP_AUTHORIZATION="Bearer anything")
    assert off.status_code == 403 and "FRAMECAST_SCALING_TOKEN" in off.json()["error"]
    settings.FRAMECAST_SCALING_TOKEN = "scale-me"
    assert client.get("/ops/scaling/cpu").status_code == 401
    wrong = client.get("/ops/scaling/cpu", HTTP_AUTHORIZATION="Bearer scale-you")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/ops/scaling/cpu", HTTP_AUTHORIZATION="Bearer scale-me").status_code == 200


@pytest.mark.django_db
def test_an_unknown_pool_is_a_404_once_authenticated(client, settings):
    settings.FRAMECAST_SCALING_TOKEN = "scale-me"
    assert client.get("/ops/scaling/tpu", HTTP_AUTHORIZATION="Bearer scale-me").status_code == 404
    assert client.get("/ops/scaling/tpu").status_code == 401  # no pool names to strangers


@pytest.mark.django_db
def test_an_autoscaler_inside_the_cluster_reaches_it_by_internal_address_over_plain_http(client, settings):
    """Like /metrics: no host check and no HTTPS redirect (the token is the gate)."""
    settings.FRAMECAST_SCALING_TOKEN = "scale-me"
    settings.ALLOWED_HOSTS = ["framecast.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    answered = client.get("/ops/scaling/cpu", HTTP_HOST="framecast-web", HTTP_AUTHORIZATION="Bearer scale-me")
    assert answered.status_code == 200 and answered.json()["pool"] == "cpu"
    assert client.get("/ops/scaling/cpu", HTTP_HOST="framecast-web").status_code == 401
    assert client.get("/ops/scaling/cpu/x", HTTP_HOST="framecast-web").status_code == 400  # not the endpoint
