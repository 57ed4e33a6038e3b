"""The worker's job runner, called in-process: it always ends the job it claimed."""

import pytest

from generation.models import Job
from gpu_workers.encode import probe_mp4
from gpu_workers.runner import run_next

from .test_tenant_isolation import make_job

pytestmark = pytest.mark.django_db


def test_runner_produces_the_requested_video(alice, tiny_model):
    job = make_job(alice, width=64, height=32, num_frames=5, steps=3)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error_detail
    info = probe_mp4(job.video.read())
    assert (info["frames"], info["width"], info["height"]) == (5, 64, 32)


def test_missing_weights_fail_the_job_with_a_clear_reason(alice, settings, tmp_path):
    settings.FRAMECAST_MODELS_DIR = tmp_path / "empty"
    job = make_job(alice)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert job.error_message == "This model is not available right now."
    assert "prepare_models" in job.error_detail


def test_a_job_that_is_not_queued_is_left_alone(alice, tiny_model):
    job = make_job(alice, state=Job.State.CANCELLED)
    assert run_next("cpu", worker="test") is None
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and job.attempts == 0


def test_an_identical_request_reuses_the_video_without_a_gpu(alice, tiny_model):
    from billing.models import BillingAccount
    from generation.services import JobParams, job_submit

    params = JobParams(model_name="framecast-tiny", prompt="a paper boat", negative_prompt="", seed=11, width=64,
                       height=32, num_frames=5, fps=8, steps=3, guidance=5.0)
    team = alice.personal_team
    first = job_submit(team=team, user=alice, params=params)
    run_next("cpu", worker="test")
    first.refresh_from_db()
    balance = BillingAccount.objects.get(team=team).available

    again = job_submit(team=team, user=alice, params=params)
    assert again.state == Job.State.SUCCEEDED and again.reused_from == first
    assert (again.price_credits, float(again.cost_usd)) == (0, 0.0)
    assert not Job.objects.filter(state=Job.State.QUEUED).exists()  # nothing for a worker
    assert run_next("cpu", worker="test") is None
    assert again.video.read() == first.video.read() and again.video.name != first.video.name
    assert BillingAccount.objects.get(team=team).available == balance

    # Any difference, or no seed at all, is a new generation.
    other = job_submit(team=team, user=alice, params=JobParams(**{**params.__dict__, "seed": 12}))
    unseeded = job_submit(team=team, user=alice, params=JobParams(**{**params.__dict__, "seed": None}))
    for job in (other, unseeded):
        assert job.reused_from is None and job.state in (Job.State.QUEUED, Job.State.THROTTLED)
