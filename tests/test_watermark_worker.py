"""Every MP4 the worker produces decodes to frames that carry its job's identifier: run
in-process on the tiny model at several sizes, and through a real Celery worker process."""

import time

import pytest

from generation.models import Job
from gpu_workers.encode import decode_frames, probe_mp4
from gpu_workers.runner import run_next
from safety import watermark
from safety.models import WatermarkRecord

from .conftest import SMALL_REQUEST
from .test_tenant_isolation import make_job


@pytest.mark.django_db
# Below 128 px on the short side the stored video is upscaled by a whole factor first.
@pytest.mark.parametrize("width, height, stored", [(32, 32, (128, 128)), (64, 48, (192, 144)), (128, 128, (128, 128))])
def test_the_workers_video_carries_its_jobs_identifier(alice, tiny_model, width, height, stored):
    job = make_job(alice, width=width, height=height, num_frames=9, steps=3)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error_detail
    data = job.video.read()
    info = probe_mp4(data)
    assert (info["width"], info["height"], info["frames"]) == (*stored, 9)  # marking keeps the shape
    record = WatermarkRecord.objects.get(job=job)
    assert record.model_name == "framecast-tiny"
    assert watermark.read(decode_frames(data)).mark_id == record.mark_id


@pytest.mark.django_db
def test_identifiers_are_random_and_distinct_per_job(alice, tiny_model):
    jobs = [make_job(alice, width=64, height=48, num_frames=5, steps=2, seed=seed) for seed in (1, 2)]
    run_next("cpu", worker="test")
    run_next("cpu", worker="test")
    ids = {WatermarkRecord.objects.get(job=job).mark_id for job in jobs}
    assert len(ids) == 2 and all(0 < mark_id < 2**32 for mark_id in ids)


@pytest.mark.services
@pytest.mark.slow
def test_a_real_worker_process_marks_the_video(alice_client, start_worker):
    response = alice_client.post("/", SMALL_REQUEST)
    assert response.status_code == 302
    job = Job.objects.get()
    start_worker()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in Job.TERMINAL:
            break
        time.sleep(0.2)
    assert job.state == Job.State.SUCCEEDED, job.error_detail
    video = alice_client.get(job.video_url())
    frames = decode_frames(b"".join(video.streaming_content))
    assert watermark.read(frames).mark_id == WatermarkRecord.objects.get(job=job).mark_id
