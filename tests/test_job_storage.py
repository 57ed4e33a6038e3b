"""A job's stored files: a retried attempt leaves exactly the job's own files, deleting the
job (or its team) removes every file ever stored for it, and the orphan sweep finds what
no job references and removes it only when told to and only after the grace period."""

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from generation.models import Job
from generation.services import (
    InvalidTransition,
    JobParams,
    job_claim_next,
    job_delete,
    job_requeue_or_fail,
    job_start_encoding,
    job_submit,
    job_succeed,
)
from generation.storage import job_file_store
from gpu_workers.runner import run_next

from .conftest import client_for, on_plan, page_text
from .test_ops_access import staff  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

PARAMS = dict(prompt="a kite", negative_prompt="", model_name="framecast-tiny", seed=5, width=32, height=32,
              num_frames=5, fps=8, steps=2, guidance=5.0)
# FileSystemStorage keeps a name in use and saves beside it under a random suffix (as
# S3Storage with file_overwrite=False); with allow_overwrite it overwrites (as S3's default).
BACKENDS = {
    "keeps-existing": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "overwrites": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"allow_overwrite": True}},
}


@pytest.fixture(params=list(BACKENDS))
def backend(request, settings):
    settings.STORAGES = {**settings.STORAGES, "default": BACKENDS[request.param]}
    return request.param


def on_disk(data_dirs, job_id) -> set[str]:
    """Every file under the media root whose path names the job, wherever it is."""
    root = Path(data_dirs["MEDIA_ROOT"])
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and str(job_id) in str(path)}


def referenced(job) -> set[str]:
    job.refresh_from_db()
    return {getattr(job, name).name for name in ("video", "poster", "spritesheet", "input_image") if getattr(job, name)}


def submit(user, **fields) -> Job:
    return job_submit(team=user.personal_team, user=user, params=JobParams(**{**PARAMS, **fields}))


def test_a_job_retried_after_its_worker_died_while_storing_keeps_only_its_own_files(
    alice, tiny_model, data_dirs, backend, django_capture_on_commit_callbacks
):
    on_plan(alice.personal_team, "pro")
    job = submit(alice)
    # Attempt 1 denoised, encoded and stored its files, then its worker was killed before
    # marking the job done; the reaper put the job back in the queue.
    first = job_start_encoding(job_claim_next("cpu", worker="w1"), inference_seconds=1.0)
    for field, data in (("video", b"first mp4"), ("poster", b"first jpg"), ("spritesheet", b"first sheet")):
        job_file_store(first.pk, field, data, attempt=first.attempts)
    assert job_requeue_or_fail(job.pk, reason="worker lost").state == Job.State.QUEUED
    run_next("cpu", worker="w2")  # attempt 2, through the real pipeline and encoder

    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.attempts == 2
    assert on_disk(data_dirs, job.id) == referenced(job) and len(referenced(job)) == 3
    assert all("-a2." in name for name in referenced(job))
    assert job.video.open("rb").read() != b"first mp4"

    with django_capture_on_commit_callbacks(execute=True):
        job_delete(job)
    assert on_disk(data_dirs, job.id) == set()


def test_storing_an_attempt_s_file_again_replaces_it(alice, data_dirs, backend):
    job = submit(alice)
    names = {job_file_store(job.pk, "video", content, attempt=1) for content in (b"one", b"two")}
    assert len(names) == 1 and on_disk(data_dirs, job.id) == names
    assert Path(data_dirs["MEDIA_ROOT"], names.pop()).read_bytes() == b"two"


def test_a_second_store_of_a_finished_attempt_or_a_stale_attempt_s_store_never_loses_the_video(alice, data_dirs):
    job = submit(alice)
    claimed = job_start_encoding(job_claim_next("cpu", worker="w1"), inference_seconds=1.0)
    done = job_succeed(claimed, video=b"mp4", poster=b"jpg", spritesheet=b"sheet", encode_seconds=0.1)
    # The same attempt storing again (a redelivery, or a retry after a commit whose answer
    # was lost): the job stays succeeded once, under the same names.
    again = job_succeed(claimed, video=b"mp4 again", poster=b"jpg", spritesheet=b"sheet", encode_seconds=0.1)
    assert again.state == Job.State.SUCCEEDED and again.finished_at == done.finished_at
    assert on_disk(data_dirs, job.id) == referenced(done) == referenced(again) and len(referenced(done)) == 3

    # An attempt presumed lost, replaced, that wakes up and stores: fenced off, and its
    # files are gone again, while the job's stay.
    other = submit(alice, seed=6)
    stale = job_start_encoding(job_claim_next("cpu", worker="w1"), inference_seconds=1.0)
    job_requeue_or_fail(other.pk, reason="worker lost")
    current = job_start_encoding(job_claim_next("cpu", worker="w2"), inference_seconds=1.0)
    finished = job_succeed(current, video=b"mp4 2", poster=b"jpg 2", spritesheet=b"sheet 2", encode_seconds=0.1)
    with pytest.raises(InvalidTransition):
        job_succeed(stale, video=b"late", poster=b"late", spritesheet=b"late", encode_seconds=0.1)
    assert on_disk(data_dirs, other.id) == referenced(finished)
    assert finished.video.open("rb").read() == b"mp4 2"


def test_deleting_a_team_removes_every_file_of_its_jobs_and_a_reused_copy_goes_with_its_own_job(
    alice, acme, tiny_model, data_dirs, django_capture_on_commit_callbacks
):
    from accounts.models import Membership
    from accounts.teams import team_delete

    on_plan(acme, "pro")
    source = job_submit(team=acme, user=alice, params=JobParams(**PARAMS))
    run_next("cpu", worker="w1")
    copy = job_submit(team=acme, user=alice, params=JobParams(**PARAMS))  # the result cache: a copy
    assert copy.reused_from_id == source.id and on_disk(data_dirs, copy.id) == referenced(copy)
    job_file_store(source.pk, "video", b"an earlier attempt's", attempt=9)  # left by a killed attempt
    with django_capture_on_commit_callbacks(execute=True):
        team_delete(membership=Membership.objects.get(user=alice, team=acme))
    assert on_disk(data_dirs, source.id) == set() and on_disk(data_dirs, copy.id) == set()


def sweep_line(staff) -> str:  # noqa: F811
    """The operations page's sweep line, as a person reads it."""
    page = page_text(client_for(staff).get("/staff/operations/"))
    line = re.search(r'id="orphan-sweep">(.*?)</p>', page, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def _age(data_dirs, name: str, hours: float) -> None:
    moment = time.time() - hours * 3600
    os.utime(Path(data_dirs["MEDIA_ROOT"], name), (moment, moment))


def _put(data_dirs, name: str, hours_old: float) -> str:
    path = Path(data_dirs["MEDIA_ROOT"], name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)
    _age(data_dirs, name, hours_old)
    return name


def test_the_sweep_counts_orphans_in_a_dry_run_and_removes_only_old_unreferenced_ones(
    alice, data_dirs, staff, settings  # noqa: F811
):
    from ops.tasks import sweep_orphan_files

    job = submit(alice)
    claimed = job_start_encoding(job_claim_next("cpu", worker="w1"), inference_seconds=1.0)
    done = job_succeed(claimed, video=b"mp4", poster=b"jpg", spritesheet=b"sheet", encode_seconds=0.1)
    for name in referenced(done):
        _age(data_dirs, name, 100)  # referenced, however old: never an orphan
    gone = uuid.uuid4()  # a job deleted before deletion removed every file
    orphans = {
        _put(data_dirs, f"jobs/{job.id}/video-a9.mp4", 30),  # another attempt's, 30 h old
        _put(data_dirs, f"jobs/{gone}/poster-a1.jpg", 30),
        _put(data_dirs, f"videos/2026/11/02/{gone}_Ab3dE9z.mp4", 200),  # the old layout
    }
    young = _put(data_dirs, f"jobs/{gone}/video-a2.mp4", 1)  # an attempt still storing, perhaps
    foreign = _put(data_dirs, "videos/README.txt", 500)  # not Framecast's: no job id
    keep = referenced(done) | {young, foreign}

    sweep_orphan_files()  # beat's task: a dry run by default
    assert all(Path(data_dirs["MEDIA_ROOT"], name).exists() for name in orphans | keep)
    assert "dry run: nothing removed" in sweep_line(staff) and "3 orphan files older than 24 h" in sweep_line(staff)

    call_command("sweep_orphan_files", "--delete")
    assert not any(Path(data_dirs["MEDIA_ROOT"], name).exists() for name in orphans)
    assert all(Path(data_dirs["MEDIA_ROOT"], name).exists() for name in keep)
    assert "(deleting): 3 orphan files older than 24 h (30 bytes), 3 removed" in sweep_line(staff)
    done.refresh_from_db()
    assert done.video.open("rb").read() == b"mp4"


@pytest.mark.services
@pytest.mark.slow
def test_a_real_worker_retrying_a_job_leaves_only_the_retry_s_files(alice, start_worker, data_dirs):
    job = submit(alice)
    first = job_start_encoding(job_claim_next("cpu", worker="lost@host"), inference_seconds=1.0)
    for field, data in (("video", b"first mp4"), ("poster", b"first jpg")):  # killed half-way through storing
        job_file_store(first.pk, field, data, attempt=first.attempts)
    job_requeue_or_fail(job.pk, reason="worker lost")
    start_worker()
    deadline = time.monotonic() + 120
    while not job.is_terminal and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.attempts == 2, job.error_detail
    # The earlier attempt's files go right after the success is committed.
    while on_disk(data_dirs, job.id) != referenced(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert on_disk(data_dirs, job.id) == referenced(job) and all("-a2." in name for name in referenced(job))
    job_delete(job)  # commits at once: no surrounding test transaction
    assert on_disk(data_dirs, job.id) == set()
