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
    assert (info["frames"], info["width"], info["height"]) == (5, 256, 128)  # 64×32, stored at 4× (upscale_for_display)


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


@pytest.mark.django_db(transaction=True)
def test_the_next_job_denoises_while_the_previous_one_is_encoded(alice, tiny_model, monkeypatch):
    """With a Finisher (as the Celery task uses), a worker hands each denoised clip to a
    background thread and goes on to its next job: the GPU does not wait for encoding."""
    import threading
    import time

    from gpu_workers import runner

    gate, real_finish, encoded_first = threading.Event(), runner._finish, []

    def held_finish(job, frames):
        if not encoded_first:
            encoded_first.append(job.pk)
            assert gate.wait(30), "the test never released the first encode"
        real_finish(job, frames)

    monkeypatch.setattr(runner, "_finish", held_finish)
    first = make_job(alice, width=64, height=32, num_frames=5, steps=3, prompt="first")
    second = make_job(alice, width=64, height=32, num_frames=5, steps=3, prompt="second")
    finisher = runner.Finisher()

    assert runner.run_next("cpu", worker="test", finisher=finisher) == first
    first.refresh_from_db()
    assert first.state == Job.State.ENCODING  # returned to take the next job, video not stored yet

    worker = threading.Thread(target=runner.run_next, args=("cpu",), kwargs={"worker": "test", "finisher": finisher})
    worker.start()
    deadline = time.monotonic() + 30
    while Job.objects.get(pk=second.pk).state != Job.State.ENCODING and time.monotonic() < deadline:
        time.sleep(0.02)
    # The second job was denoised while the first was still being encoded...
    assert Job.objects.get(pk=second.pk).state == Job.State.ENCODING
    assert Job.objects.get(pk=first.pk).state == Job.State.ENCODING
    # ...and waits its turn for the encoder: at most one clip is held in memory.
    worker.join(0.3)
    assert worker.is_alive()

    gate.set()
    worker.join(30)
    finisher.drain()
    for job in (first, second):
        job.refresh_from_db()
        assert job.state == Job.State.SUCCEEDED, job.error_detail
        assert probe_mp4(job.video.read())["frames"] == 5


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_encoding_in_the_background_fails_the_job_and_releases_its_credits(
    alice, tiny_model, monkeypatch
):
    from billing.ledger import account_for_team
    from generation.services import JobParams, job_submit
    from gpu_workers import encode, runner

    def broken_encoder(frames, fps):
        raise OSError("disk full")

    monkeypatch.setattr(encode, "encode_mp4", broken_encoder)
    team = alice.personal_team
    before = account_for_team(team).available
    params = JobParams(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, width=64,
                       height=32, num_frames=5, fps=8, steps=3, guidance=5.0)
    job = job_submit(team=team, user=alice, params=params)
    finisher = runner.Finisher()
    runner.run_next("cpu", worker="test", finisher=finisher)
    finisher.drain()
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "disk full" in job.error_detail
    assert account_for_team(team).available == before


def test_quick_steps_are_stored_together_so_the_stored_step_lags_under_the_limit():
    from gpu_workers.runner import _ProgressWrites

    writes = _ProgressWrites(lag_seconds=0.5)
    # Steps of 1/8 s: stored every half second, never leaving the row behind longer.
    stored = [i for i in range(1, 21) if writes.due(i * 0.125, step_seconds=0.125)]
    assert stored == [4, 8, 12, 16, 20]
    # Slow steps (as long as the limit or longer): every one is stored.
    slow = _ProgressWrites(lag_seconds=0.5)
    assert all(slow.due(i * 2.0, step_seconds=2.0) for i in range(1, 6))
    # 0: every step stored.
    every = _ProgressWrites(lag_seconds=0)
    assert all(every.due(i * 0.01, step_seconds=0.01) for i in range(1, 6))


@pytest.mark.django_db(transaction=True)
def test_a_quick_job_stores_its_last_step_and_publishes_every_step(alice, tiny_model):
    from unittest import mock

    from generation import services

    job = make_job(alice, steps=8)  # the tiny model's steps take milliseconds: one UPDATE, eight events
    with mock.patch.object(services.events, "publish", wraps=services.events.publish) as published:
        run_next(job.pool, worker="w1")
    job.refresh_from_db()
    steps = [call.args[1]["i"] for call in published.call_args_list if call.args[1]["type"] == "step"]
    assert steps == list(range(1, job.steps + 1))
    assert job.progress_step == job.steps
