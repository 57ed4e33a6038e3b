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
