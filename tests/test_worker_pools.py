"""Worker pools: routing by model, priority without starvation, lost workers, cost per job."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import user_signup
from billing.models import BillingAccount
from generation import services
from generation.models import Job
from generation.pools import get_pool, queue_name
from generation.services import JobParams, job_claim_next, job_submit
from gpu_workers.models import WorkerHeartbeat
from gpu_workers.reaper import reap_lost_jobs

from .conftest import on_plan

S = Job.State


def params(**overrides) -> JobParams:
    base = dict(
        model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, fps=8, guidance=5.0,
        width=64, height=64, num_frames=9, steps=4,
    )
    return JobParams(**{**base, **overrides})


def free_user(n: int):
    return user_signup(email=f"free{n}@example.com", password="correct horse battery")


@pytest.mark.django_db
def test_jobs_go_to_the_pool_that_serves_their_model(alice, settings, django_capture_on_commit_callbacks):
    settings.WAN21_T2V_1_3B_PATH = "/models/wan2.1-t2v-1.3b"  # offered once its weights are configured
    on_plan(alice.personal_team, "pro")
    tiny = job_submit(team=alice.personal_team, user=alice, params=params())
    wan = job_submit(
        team=alice.personal_team,
        user=alice,
        params=params(model_name="wan2.1-t2v-1.3b", width=832, height=480, num_frames=33, fps=16, steps=20),
    )
    assert (tiny.pool, wan.pool) == ("cpu", "h100")


@pytest.mark.services
def test_the_wake_up_message_goes_to_the_pools_own_queue(transactional_db, alice, settings, queue_prefix):
    import redis

    settings.WAN21_T2V_1_3B_PATH = "/models/wan2.1-t2v-1.3b"
    on_plan(alice.personal_team, "pro")
    job_submit(
        team=alice.personal_team,
        user=alice,
        params=params(model_name="wan2.1-t2v-1.3b", width=832, height=480, num_frames=33, fps=16, steps=20),
    )
    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert broker.llen(f"{queue_prefix}gpu.h100") == 1
        assert broker.llen(f"{queue_prefix}gpu.cpu") == 0
    finally:
        broker.delete(f"{queue_prefix}gpu.h100")


@pytest.mark.django_db
def test_a_pro_job_starts_before_ten_free_jobs_queued_before_it(alice):
    free_jobs = [job_submit(team=(u := free_user(n)).personal_team, user=u, params=params()) for n in range(10)]
    on_plan(alice.personal_team, "pro")
    pro_job = job_submit(team=alice.personal_team, user=alice, params=params())
    order = [job_claim_next("cpu", worker="w").id for _ in range(11)]
    assert order == [pro_job.id] + [job.id for job in free_jobs]
    assert job_claim_next("cpu", worker="w") is None


@pytest.mark.django_db
def test_free_jobs_that_waited_longer_than_the_head_start_keep_their_place(alice, settings):
    """No starvation: a paid job's head start is bounded (priority × head start seconds)."""
    settings.FRAMECAST_PRIORITY_HEAD_START_SECONDS = 0.01  # Pro's head start: 0.08 s
    early = free_user(1)
    early_job = job_submit(team=early.personal_team, user=early, params=params())
    time.sleep(0.2)
    on_plan(alice.personal_team, "pro")
    pro_job = job_submit(team=alice.personal_team, user=alice, params=params())
    assert [job_claim_next("cpu", worker="w").id for _ in range(2)] == [early_job.id, pro_job.id]


def running_job(owner, *, worker: str, attempts_before: int = 0) -> Job:
    job = job_submit(team=owner.personal_team, user=owner, params=params())
    Job.objects.filter(pk=job.pk).update(attempts=attempts_before)
    job = job_claim_next("cpu", worker=worker)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    return Job.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_a_job_of_a_silent_worker_goes_back_to_the_queue(alice, django_capture_on_commit_callbacks):
    job = running_job(alice, worker="w1@gone")
    WorkerHeartbeat.objects.create(
        hostname="w1@gone", pool="cpu", device="cpu", started_at=timezone.now() - timedelta(hours=1),
        last_seen_at=timezone.now() - timedelta(minutes=5),
    )
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        assert [j.id for j in reap_lost_jobs()] == [job.id]
    job.refresh_from_db()
    assert (job.state, job.worker, job.attempts, job.progress_step) == (S.QUEUED, "", 1, 0)
    assert len(dispatched) == 1  # a worker is woken for it
    # The lost worker, if it comes back, cannot touch the job any more.
    with pytest.raises(services.InvalidTransition):
        services.job_start_encoding(Job(pk=job.pk, attempts=1, worker="w1@gone"), inference_seconds=1)
    retried = job_claim_next("cpu", worker="w2@alive")
    assert (retried.id, retried.attempts) == (job.id, 2)


@pytest.mark.django_db
@pytest.mark.parametrize("beat_names", ["current_job_id", "finishing_job_id"])
def test_a_job_of_a_live_worker_is_left_alone(alice, beat_names):
    """Its beats name the job: denoising it, or storing it on the finisher thread."""
    job = running_job(alice, worker="w1@alive")
    WorkerHeartbeat.objects.create(
        hostname="w1@alive", pool="cpu", device="cpu", started_at=timezone.now() - timedelta(hours=1),
        last_seen_at=timezone.now(), **{beat_names: job.id},
    )
    assert reap_lost_jobs() == []
    job.refresh_from_db()
    assert job.state == S.RUNNING


@pytest.mark.django_db
def test_a_job_its_live_worker_gave_up_goes_back_to_the_queue_in_its_place(alice, bob):
    """A worker that lost its database mid-job beats on once it is back, naming no job:
    the job goes back to the queue ahead of the jobs that arrived after it."""
    job = running_job(alice, worker="w1@alive")
    later = job_submit(team=bob.personal_team, user=bob, params=params())
    WorkerHeartbeat.objects.create(
        hostname="w1@alive", pool="cpu", device="cpu", started_at=timezone.now() - timedelta(hours=1),
        last_seen_at=timezone.now(), current_job_id=later.id,  # busy with something else
    )
    assert [j.id for j in reap_lost_jobs()] == [job.id]
    job.refresh_from_db()
    assert job.state == S.QUEUED and "gave the job up" not in job.error_message
    assert job.dispatch_key < Job.objects.get(pk=later.pk).dispatch_key
    assert job_claim_next("cpu", worker="w2@alive").id == job.id


@pytest.mark.django_db
def test_a_worker_restarted_under_the_same_name_does_not_keep_its_predecessors_job(alice):
    """A container restart brings the worker back with the same hostname: it beats, but the
    job its killed predecessor claimed is lost and goes back to the queue."""
    job = running_job(alice, worker="w1@container")
    WorkerHeartbeat.objects.create(
        hostname="w1@container", pool="cpu", device="cpu", started_at=timezone.now() - timedelta(seconds=10),
        last_seen_at=timezone.now(),
    )
    assert [j.id for j in reap_lost_jobs()] == [job.id]
    job.refresh_from_db()
    assert job.state == S.QUEUED


@pytest.mark.django_db
def test_after_the_last_attempt_the_job_fails_and_its_credits_return(alice, settings):
    settings.FRAMECAST_MAX_ATTEMPTS = 3
    job = running_job(alice, worker="w3@gone", attempts_before=2)
    assert job.attempts == 3
    reap_lost_jobs()
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert "stopped responding (3 attempts). No credits were used." in job.error_message
    account = BillingAccount.objects.get(team=alice.personal_team)
    assert (account.available, account.held_credits) == (100, 0)


@pytest.mark.django_db
def test_cost_per_job_is_gpu_seconds_at_the_pools_price(alice):
    job = running_job(alice, worker="w")
    job = services.job_start_encoding(job, inference_seconds=200.0)
    job = services.job_succeed(job, video=b"v", poster=b"p", encode_seconds=1.0)
    assert job.gpu_seconds == pytest.approx(300, abs=5)  # claimed 5 minutes ago
    assert float(job.cost_usd) == pytest.approx(job.gpu_seconds * get_pool("cpu").price_per_gpu_hour / 3600, abs=1e-6)
    assert job.queue_seconds is not None


@pytest.mark.services
@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes(transactional_db, alice, settings, start_worker):
    """SIGKILL a worker in the middle of a job: the reaper hands the job to a second worker,
    which finishes it; nothing stays `running`, and the job was charged once."""
    settings.FRAMECAST_HEARTBEAT_STALE_SECONDS = 3
    job = job_submit(
        team=alice.personal_team, user=alice, params=params(width=192, height=192, num_frames=33, steps=30)
    )
    first = start_worker("w1", FRAMECAST_HEARTBEAT_SECONDS="1")
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).progress_step < 2:
        assert time.monotonic() < deadline, "the first worker never got going"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert Job.objects.get(pk=job.pk).state == S.RUNNING  # nobody knows yet

    start_worker("w2", FRAMECAST_HEARTBEAT_SECONDS="1")
    time.sleep(settings.FRAMECAST_HEARTBEAT_STALE_SECONDS + 1)
    assert [j.id for j in reap_lost_jobs()] == [job.id]
    while Job.objects.get(pk=job.pk).state != S.SUCCEEDED:
        assert time.monotonic() < deadline, f"job ended {Job.objects.get(pk=job.pk).state}"
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.attempts == 2 and job.worker.startswith("w2@")
    assert not Job.objects.filter(state__in=[S.RUNNING, S.ENCODING]).exists()
    account = BillingAccount.objects.get(team=alice.personal_team)
    assert (account.available, account.held_credits) == (100 - job.price_credits, 0)
    assert account.entries.filter(kind="capture").count() == 1

    # The pool-status data: w1 went silent, w2 reports its finished job.
    from gpu_workers.selectors import worker_statuses

    while not WorkerHeartbeat.objects.filter(hostname__startswith="w2@", jobs_done=1).exists():
        assert time.monotonic() < deadline, "w2 never reported its finished job"
        time.sleep(0.2)
    statuses = {row.worker.hostname.split("@")[0]: row for row in worker_statuses("cpu")}
    assert statuses["w1"].status == "stale"
    assert statuses["w2"].status == "healthy" and statuses["w2"].worker.device == "cpu"


@pytest.mark.services
@pytest.mark.slow
def test_cancelling_a_running_job_stops_it_within_one_step(transactional_db, alice, start_worker, tmp_path):
    """The worker checks at every denoising step: after a cancel it runs at most the step it
    was in, stores no video, and its credits are back at once."""
    job = job_submit(
        team=alice.personal_team, user=alice, params=params(width=192, height=192, num_frames=33, steps=30)
    )
    start_worker("w1")
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).progress_step < 2:
        assert time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.02)
    services.job_cancel(job.id)
    step_at_cancel = Job.objects.get(pk=job.pk).progress_step
    account = BillingAccount.objects.get(team=alice.personal_team)
    assert (account.available, account.held_credits) == (100, 0)
    # The worker notices: it becomes free (its heartbeat shows no current job).
    while not WorkerHeartbeat.objects.filter(hostname__startswith="w1@", jobs_done=1, current_job_id=None).exists():
        assert time.monotonic() < deadline, "the worker did not stop"
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.state == S.CANCELLED and not job.video
    import re

    stopped = re.search(r"cancelled: stopped after step (\d+) of 30", (tmp_path / "worker-w1.log").read_text())
    assert stopped, "the worker did not report where it stopped"
    assert int(stopped.group(1)) <= step_at_cancel + 1


@pytest.mark.django_db
def test_queued_jobs_whose_wake_ups_were_lost_get_new_ones_even_in_a_busy_pool(alice, bob, queue_prefix):
    """If the broker lost its messages (or a worker took them and could not claim), queued
    jobs would wait forever: the reaper's run sends each pool as many wake-ups as it has
    queued jobs beyond the messages waiting for them, whether or not a job is running."""
    from config.celery_app import app
    from gpu_workers.reaper import wake_idle_pools

    # In a test transaction nothing commits, so no wake-up is sent: both are "lost".
    job_submit(team=alice.personal_team, user=alice, params=params())
    job_submit(team=bob.personal_team, user=bob, params=params())
    try:
        assert wake_idle_pools() == {"cpu": 2}
        assert wake_idle_pools() == {}  # their wake-ups wait in the queue now
        other = free_user(1)
        running_job(other, worker="w@busy")  # its own wake-up was lost too, but it is claimed
        late = free_user(2)
        job_submit(team=late.personal_team, user=late, params=params())
        assert wake_idle_pools() == {"cpu": 1}  # a running job does not hide a lost wake-up
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue_name("cpu"))


def test_a_heartbeat_during_the_workers_torch_import_reports_the_cpu(monkeypatch):
    """The heartbeat thread may beat while the worker thread is still importing torch (a
    partly initialised module without `cuda`): that beat says "cpu" instead of failing."""
    import types

    from gpu_workers.heartbeat import _device_and_memory

    monkeypatch.setitem(__import__("sys").modules, "torch", types.ModuleType("torch"))
    device, memory = _device_and_memory()
    assert device == "cpu" and memory > 0


def test_a_worker_in_trouble_withholds_its_heartbeat_until_it_can_work_again(transactional_db, settings):
    """A worker that cannot reach the database for its work must not look healthy: while it
    is in trouble its heartbeat row is not refreshed; once it can work, beats resume."""
    from gpu_workers import heartbeat
    from gpu_workers.selectors import worker_statuses

    settings.FRAMECAST_HEARTBEAT_SECONDS = 0.1
    heartbeat.trouble("the database is unreachable")
    heartbeat.start(hostname="troubled@test", queues=["gpu.cpu"])
    try:
        time.sleep(0.5)  # several beats' time
        assert not WorkerHeartbeat.objects.filter(hostname="troubled@test").exists()
        heartbeat.trouble(None)
        deadline = time.monotonic() + 10
        while not WorkerHeartbeat.objects.filter(hostname="troubled@test").exists():
            assert time.monotonic() < deadline, "the heartbeat did not resume"
            time.sleep(0.05)
        assert {row.worker.hostname: row.status for row in worker_statuses("cpu")}["troubled@test"] == "healthy"
    finally:
        heartbeat.trouble(None)
        heartbeat.stop()
